"""The whole store contract through a server with ``--auth``, as an admin: authentication
changes who may call, never what a call does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from triptych.server import accounts
from triptych.server.settings import ServerSettings
from triptych.store.base import MetadataStore
from triptych.store.http.client import HttpStore
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer
from triptych.testing.store_contract import StoreContract


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('auth') / 'start.db'}"
    placeholder = SqlStore(url)
    with LiveServer(placeholder, settings=ServerSettings(store=url, auth=True)) as server:
        yield server
    placeholder.close()


class TestStoreContractWithAuth(StoreContract):
    @pytest.fixture
    def store(self, auth_server: LiveServer, tmp_path) -> Iterator[MetadataStore]:  # type: ignore[no-untyped-def]
        behind = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
        token = accounts.create_admin(behind, "root").secret
        auth_server.use(behind)
        remote = HttpStore(auth_server.url, token=token)
        yield remote
        remote.close()
        behind.close()
