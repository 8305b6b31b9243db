"""A real team server on loopback for tests: uvicorn in a background thread, on a free port.

::

    with LiveServer(SqlStore(url)) as server:
        store = HttpStore(server.url)

``use(store)`` points the running server at another store, so a suite can start one server
and give each test a fresh, empty store behind it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from triptych.testing.process import free_port

if TYPE_CHECKING:
    from triptych.artifacts.base import ArtifactStore
    from triptych.server.settings import ServerSettings
    from triptych.store.base import MetadataStore


class LiveServer:
    """``create_app(store, artifacts)`` served by uvicorn on ``127.0.0.1``."""

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore | None = None,
        *,
        settings: ServerSettings | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        from triptych.server.app import create_app

        self.app = create_app(store, artifacts, settings=settings)
        self._access_log = bool(settings and settings.access_log)
        self.host = "127.0.0.1"
        self.port = free_port()
        self._timeout = startup_timeout
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use(self, store: MetadataStore) -> None:
        """Serve ``store`` from now on (the previous one stays the caller's to close)."""
        self.app.state.store = store

    def start(self) -> LiveServer:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="info" if self._access_log else "warning",
            access_log=self._access_log,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
