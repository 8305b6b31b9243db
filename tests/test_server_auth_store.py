"""The auth contract (users, grants, tokens) on SQLite and PostgreSQL, and how tokens are kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from triptych.server import accounts
from triptych.store.sql.engine import normalise_url
from triptych.store.sql.store import SqlStore
from triptych.testing.auth_contract import AuthContract


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auth.db'}"
    return str(request.getfixturevalue("postgres_url"))


class TestAuthContract(AuthContract):
    @pytest.fixture
    def store(self, url: str) -> Iterator[SqlStore]:
        store = SqlStore(url)
        yield store
        store.close()


def _rows(url: str) -> list[tuple[str, ...]]:
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).all()
    engine.dispose()
    return [tuple(str(v) for v in row) for row in rows]


def test_a_token_is_stored_only_as_its_hash(url: str) -> None:
    store = SqlStore(url)
    try:
        issued = accounts.create_admin(store, "alice")
    finally:
        store.close()
    secret = issued.secret
    assert secret.startswith(f"tpt_{issued.token.id}_")
    assert len(secret[17:]) >= 43  # token_urlsafe(32): 256 bits
    [row] = _rows(url)
    assert accounts.digest_of(secret) in row
    assert not any(secret in value or secret[17:] in value for value in row)
    assert "tpt_…" in repr(issued) and secret not in repr(issued)


def test_tokens_are_unique_and_parse() -> None:
    made = {accounts.parse_token(f"tpt_{'a' * 12}_{'b' * 43}")}
    assert made == {("a" * 12, accounts.digest_of(f"tpt_{'a' * 12}_{'b' * 43}"))}
    for bad in ("", "tpt_", "Bearer x", f"tpt_{'A' * 12}_{'b' * 43}", f"tpt_{'a' * 12}_short"):
        assert accounts.parse_token(bad) is None
    assert accounts.redact_token(f"call with tpt_{'a' * 12}_{'b' * 43} failed") == (
        f"call with tpt_{'a' * 12}_… failed"
    )
