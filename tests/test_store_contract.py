"""The store contract suite, run against every backend: SQLite, PostgreSQL, and the HTTP
client talking to a real team server (uvicorn on loopback) over a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from triptych.store.base import MetadataStore
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer
from triptych.testing.store_contract import StoreContract


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module; each test points it at a fresh store (see ``use``)."""
    placeholder = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('server') / 'start.db'}")
    with LiveServer(placeholder) as server:
        yield server
    placeholder.close()


class TestStoreContract(StoreContract):
    @pytest.fixture(params=["sqlite", "postgres", "http"])
    def store(self, request: pytest.FixtureRequest, tmp_path) -> Iterator[MetadataStore]:  # type: ignore[no-untyped-def]
        if request.param == "http":
            from triptych.store.http.client import HttpStore

            behind = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
            server: LiveServer = request.getfixturevalue("live_server")
            server.use(behind)
            remote = HttpStore(server.url)
            yield remote
            remote.close()
            behind.close()
            return
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            url = request.getfixturevalue("postgres_url")
        store = SqlStore(url)
        yield store
        store.close()
