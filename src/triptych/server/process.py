"""Running the team server: check the address, then uvicorn with one or several workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from triptych.listener import check_port, is_loopback, run
from triptych.server.settings import ServerSettings

__all__ = ["is_loopback", "serve"]


def serve(settings: ServerSettings, *, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (blocking)."""
    settings.check()
    check_port(settings.host, settings.port)

    def app() -> Any:
        from triptych.server.app import create_app

        built = create_app(settings.store, settings.artifacts, settings=settings)
        if on_ready is not None:
            on_ready()
        return built

    def before_workers() -> None:
        from triptych.store.sql.store import SqlStore

        SqlStore(settings.store).close()  # migrate once, before the workers race to
        settings.to_env()
        if on_ready is not None:
            on_ready()

    run(
        settings.host,
        settings.port,
        access_log=settings.access_log,
        workers=settings.workers,
        app=app,
        factory="triptych.server.app:app_from_env",
        before_workers=before_workers,
    )
