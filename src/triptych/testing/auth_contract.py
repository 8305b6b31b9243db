"""The auth part of the store contract: users, grants, tokens (``store/auth.py``).

A test class inherits :class:`AuthContract` and provides a ``store`` fixture (a fresh, empty
:class:`~triptych.store.auth.AuthStore`); ``tests/test_server_auth_store.py`` runs it on
SQLite and PostgreSQL. The HTTP client is not an AuthStore: users are the server's business.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from triptych.errors import AlreadyExists, InvalidInput, NotFound
from triptych.store.auth import ApiToken, AuthStore, Grant, User
from triptych.store.base import now_ms


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AuthContract:
    """Behaviour every store that keeps users and tokens guarantees."""

    def test_users_with_grants(self, store: AuthStore) -> None:
        made = store.create_user("ana", {"*": "viewer", "diabetes": "editor"}, actor="root")
        assert isinstance(made, User)
        assert made.grants == (Grant("*", "viewer"), Grant("diabetes", "editor"))
        assert made.created_by == "root" and made.created_at > 0
        assert made.role_on("diabetes") == "editor" and made.role_on("other") is None
        assert store.get_user("ana") == made
        store.create_user("bob")
        assert [u.name for u in store.list_users()] == ["ana", "bob"]
        assert store.get_user("bob").grants == ()
        assert store.count_admins() == 0

    def test_a_name_is_taken_once(self, store: AuthStore) -> None:
        store.create_user("ana", {"*": "admin"})
        with pytest.raises(AlreadyExists, match="'ana' already exists"):
            store.create_user("ana", {"*": "viewer"})
        assert store.get_user("ana").grants == (Grant("*", "admin"),)  # unchanged

    def test_racing_creators_make_one_user(self, store: AuthStore) -> None:
        outcomes: list[str] = []

        def create() -> None:
            try:
                store.create_user("racer", {"*": "admin"})
                outcomes.append("made")
            except AlreadyExists:
                outcomes.append("taken")

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["made", "taken", "taken", "taken"]
        assert store.count_admins() == 1

    @pytest.mark.parametrize(
        ("name", "grants"),
        [
            ("", {}),
            ("has space", {}),
            ("-dash", {}),
            ("x" * 65, {}),
            ("ana", {"*": "owner"}),
            ("ana", {"": "viewer"}),
            ("ana", {"bad\nname": "viewer"}),
        ],
    )
    def test_bad_users_are_refused(
        self, store: AuthStore, name: str, grants: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidInput):
            store.create_user(name, grants)
        assert store.list_users() == []

    def test_grant_replaces_and_revoke_removes(self, store: AuthStore) -> None:
        store.create_user("ana", {"*": "viewer"})
        assert store.grant_role("ana", "editor").grants == (Grant("*", "editor"),)
        both = store.grant_role("ana", "admin", "diabetes")
        assert both.grants == (Grant("*", "editor"), Grant("diabetes", "admin"))
        assert store.revoke_role("ana").grants == (Grant("diabetes", "admin"),)
        with pytest.raises(NotFound, match="no role on"):
            store.revoke_role("ana", "*")
        with pytest.raises(InvalidInput, match="unknown role"):
            store.grant_role("ana", "root")
        with pytest.raises(NotFound, match="user 'zed'"):
            store.grant_role("zed", "viewer")
        assert store.get_user("ana").grants == (Grant("diabetes", "admin"),)

    def test_tokens_authenticate_until_revoked(self, store: AuthStore) -> None:
        store.create_user("ana", {"*": "editor"})
        secret = "tpt_0123456789ab_" + "s" * 43
        token = store.add_token("ana", "0123456789ab", _digest(secret), label="ci", actor="x")
        assert isinstance(token, ApiToken)
        assert (token.user, token.label, token.created_by) == ("ana", "ci", "x")
        assert token.active(now_ms()) and token.revoked_at is None
        user = store.authenticate("0123456789ab", _digest(secret))
        assert user is not None and user.name == "ana"
        assert store.authenticate("0123456789ab", _digest(secret + "x")) is None
        assert store.authenticate("ffffffffffff", _digest(secret)) is None
        assert store.list_tokens() == [token] == store.list_tokens("ana")
        revoked = store.revoke_token("0123456789ab", at=1234)
        assert revoked.revoked_at == 1234 and not revoked.active(now_ms())
        assert store.authenticate("0123456789ab", _digest(secret)) is None
        assert store.revoke_token("0123456789ab").revoked_at == 1234  # the first time stays
        with pytest.raises(NotFound):
            store.revoke_token("ffffffffffff")

    def test_expired_tokens_are_refused(self, store: AuthStore) -> None:
        store.create_user("ana", {"*": "viewer"})
        digest = _digest("tpt_aaaaaaaaaaaa_secret")
        store.add_token("ana", "aaaaaaaaaaaa", digest, expires_at=10_000)
        assert store.authenticate("aaaaaaaaaaaa", digest, at=9_999) is not None
        assert store.authenticate("aaaaaaaaaaaa", digest, at=10_000) is None
        assert store.authenticate("aaaaaaaaaaaa", digest) is None  # now is long after

    def test_bad_tokens_are_refused(self, store: AuthStore) -> None:
        store.create_user("ana")
        good = _digest("x")
        for token_id, digest in (("short", good), ("0123456789AB", good), ("0123456789ab", "x")):
            with pytest.raises(InvalidInput):
                store.add_token("ana", token_id, digest)
        with pytest.raises(InvalidInput, match="expiry"):
            store.add_token("ana", "0123456789ab", good, expires_at=-1)
        with pytest.raises(NotFound, match="user 'zed'"):
            store.add_token("zed", "0123456789ab", good)
        store.add_token("ana", "0123456789ab", good)
        with pytest.raises(AlreadyExists):
            store.add_token("ana", "0123456789ab", _digest("y"))
        with pytest.raises(NotFound):
            store.list_tokens("zed")
        assert len(store.list_tokens()) == 1
