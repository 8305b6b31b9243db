"""The store contract suite, run against every backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from triptych.store.base import MetadataStore
from triptych.store.sql.store import SqlStore
from triptych.testing.store_contract import StoreContract


class TestStoreContract(StoreContract):
    @pytest.fixture(params=["sqlite", "postgres"])
    def store(self, request: pytest.FixtureRequest, tmp_path) -> Iterator[MetadataStore]:  # type: ignore[no-untyped-def]
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            url = request.getfixturevalue("postgres_url")
        store = SqlStore(url)
        yield store
        store.close()
