"""Running the team server: check the address, then uvicorn with one or several workers."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from triptych.errors import InvalidInput
from triptych.server.settings import ServerSettings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """Say that the address is unusable before loading anything (uvicorn would say it later)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InvalidInput(f"cannot listen on {host!r}: {e}", hint="check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {e.strerror}",
                hint="pick another port with --port, or stop what uses it",
            ) from None


def serve(settings: ServerSettings, *, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (blocking)."""
    import uvicorn

    settings.check()
    check_port(settings.host, settings.port)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
        "access_log": settings.access_log,
        "log_level": "info" if settings.access_log else "warning",
        "timeout_graceful_shutdown": 30,
    }
    if settings.workers == 1:
        from triptych.server.app import create_app

        app = create_app(settings.store, settings.artifacts, settings=settings)
        if on_ready is not None:
            on_ready()
        uvicorn.Server(uvicorn.Config(app, **common)).run()
        return
    from triptych.store.sql.store import SqlStore

    SqlStore(settings.store).close()  # migrate once, before the workers race to
    settings.to_env()
    if on_ready is not None:
        on_ready()
    uvicorn.run(
        "triptych.server.app:app_from_env", factory=True, workers=settings.workers, **common
    )
