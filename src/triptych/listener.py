"""Where the HTTP servers listen (the team server and the model server): the address checked
before anything heavy loads, and uvicorn run with the options both use."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from triptych.errors import InvalidInput


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


def run(
    host: str,
    port: int,
    *,
    access_log: bool,
    workers: int,
    app: Callable[[], Any],
    factory: str,
    before_workers: Callable[[], None],
) -> None:
    """Serve until SIGINT/SIGTERM (blocking). One worker serves ``app()`` in this process;
    several are forked by uvicorn, each building its app from ``factory`` (``module:function``)
    after ``before_workers()`` has left what they need (e.g. in the environment)."""
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "auto",  # uvloop when installed (uvicorn[standard])
        "http": "auto",  # httptools when installed
        "lifespan": "on",
        "access_log": access_log,
        "log_level": "info" if access_log else "warning",
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        uvicorn.Server(uvicorn.Config(app(), **common)).run()
        return
    before_workers()
    uvicorn.run(factory, factory=True, workers=workers, **common)
