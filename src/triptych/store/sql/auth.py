"""Users, role grants and API tokens in SQL (mixed into :class:`SqlStore`).

:meth:`SqlAuth.authenticate` is one read of one token row joined to its user; nothing is
cached, so a revocation committed by any process is seen by the very next request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, InvalidInput, NotFound
from triptych.store.auth import (
    ALL_PROJECTS,
    ApiToken,
    AuthStore,
    Grant,
    User,
    validate_digest,
    validate_grants,
    validate_project,
    validate_role,
    validate_token_id,
    validate_user_name,
)
from triptych.store.base import now_ms
from triptych.store.sql import schema as db

_USERS_HINT = "list them with: triptych server user list"
_TOKENS_HINT = "list them with: triptych server token list"


def _user_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(db.users.c.id).where(db.users.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"user {name!r} not found", hint=_USERS_HINT)
    return int(found)


def _load_user(conn: Connection, user_id: int) -> User:
    row = conn.execute(select(db.users).where(db.users.c.id == user_id)).one()
    g = db.role_grants
    grants = conn.execute(
        select(g.c.project, g.c.role).where(g.c.user_id == user_id).order_by(g.c.project)
    ).all()
    return User(
        name=row.name,
        grants=tuple(Grant(p, r) for p, r in grants),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user=row.name,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_by=row.created_by,
    )


_TOKEN_COLUMNS = (
    db.api_tokens.c.id,
    db.users.c.name,
    db.api_tokens.c.label,
    db.api_tokens.c.created_at,
    db.api_tokens.c.expires_at,
    db.api_tokens.c.revoked_at,
    db.api_tokens.c.created_by,
)


class SqlAuth(AuthStore):
    """Users, grants and tokens; relies on the transaction helpers of SqlStore."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]

    def create_user(
        self, name: str, grants: Mapping[str, str] | None = None, *, actor: str | None = None
    ) -> User:
        name = validate_user_name(name)
        wanted = validate_grants(grants or {})

        def write(conn: Connection) -> User:
            user_id = conn.execute(
                insert(db.users)
                .values(name=name, created_at=now_ms(), created_by=actor)
                .returning(db.users.c.id)
            ).scalar_one()
            for project, role in wanted.items():
                conn.execute(
                    insert(db.role_grants).values(user_id=user_id, project=project, role=role)
                )
            return _load_user(conn, user_id)

        try:
            result: User = self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(
                f"user {name!r} already exists",
                hint=f"give it a token instead: triptych server token create {name}",
            ) from e
        return result

    def get_user(self, name: str) -> User:
        result: User = self._read(lambda conn: _load_user(conn, _user_id(conn, name)))
        return result

    def list_users(self) -> list[User]:
        def read(conn: Connection) -> list[User]:
            ids = conn.execute(select(db.users.c.id).order_by(db.users.c.name)).scalars()
            return [_load_user(conn, i) for i in ids]

        result: list[User] = self._read(read)
        return result

    def grant_role(self, name: str, role: str, project: str = ALL_PROJECTS) -> User:
        role = validate_role(role)
        project = validate_project(project)
        g = db.role_grants

        def write(conn: Connection) -> User:
            user_id = _user_id(conn, name)
            conn.execute(delete(g).where(g.c.user_id == user_id, g.c.project == project))
            conn.execute(insert(g).values(user_id=user_id, project=project, role=role))
            return _load_user(conn, user_id)

        result: User = self._write(write)
        return result

    def revoke_role(self, name: str, project: str = ALL_PROJECTS) -> User:
        g = db.role_grants

        def write(conn: Connection) -> User:
            user_id = _user_id(conn, name)
            done = conn.execute(delete(g).where(g.c.user_id == user_id, g.c.project == project))
            if done.rowcount != 1:
                raise NotFound(f"user {name!r} has no role on {project!r}", hint=_USERS_HINT)
            return _load_user(conn, user_id)

        result: User = self._write(write)
        return result

    def add_token(
        self,
        user: str,
        token_id: str,
        digest: str,
        *,
        label: str | None = None,
        expires_at: int | None = None,
        actor: str | None = None,
    ) -> ApiToken:
        token_id = validate_token_id(token_id)
        digest = validate_digest(digest)
        if label is not None and (not isinstance(label, str) or len(label) > db.KEY):
            raise InvalidInput(f"a token label is text of at most {db.KEY} characters")
        if expires_at is not None and (
            isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= 0
        ):
            raise InvalidInput(f"invalid expiry {expires_at!r}: milliseconds since the epoch")

        def write(conn: Connection) -> ApiToken:
            user_id = _user_id(conn, user)
            conn.execute(
                insert(db.api_tokens).values(
                    id=token_id,
                    user_id=user_id,
                    digest=digest,
                    label=label,
                    created_at=now_ms(),
                    expires_at=expires_at,
                    created_by=actor,
                )
            )
            return _token(conn.execute(self._tokens().where(db.api_tokens.c.id == token_id)).one())

        try:
            result: ApiToken = self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(f"token id {token_id!r} is taken") from e
        return result

    @staticmethod
    def _tokens() -> Any:
        return select(*_TOKEN_COLUMNS).join(db.users, db.users.c.id == db.api_tokens.c.user_id)

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        def read(conn: Connection) -> list[ApiToken]:
            query = self._tokens()
            if user is not None:
                query = query.where(db.api_tokens.c.user_id == _user_id(conn, user))
            query = query.order_by(db.api_tokens.c.created_at.desc(), db.api_tokens.c.id)
            return [_token(r) for r in conn.execute(query)]

        result: list[ApiToken] = self._read(read)
        return result

    def revoke_token(self, token_id: str, *, at: int | None = None) -> ApiToken:
        t = db.api_tokens

        def write(conn: Connection) -> ApiToken:
            when = now_ms() if at is None else int(at)
            conn.execute(
                update(t)
                .where(t.c.id == token_id, t.c.revoked_at.is_(None))
                .values(revoked_at=when)
            )
            row = conn.execute(self._tokens().where(t.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"token {token_id!r} not found", hint=_TOKENS_HINT)
            return _token(row)

        result: ApiToken = self._write(write)
        return result

    def authenticate(self, token_id: str, digest: str, at: int | None = None) -> User | None:
        if not isinstance(token_id, str) or not isinstance(digest, str):
            return None
        t = db.api_tokens

        def read(conn: Connection) -> User | None:
            row = conn.execute(
                select(t.c.user_id, t.c.digest, t.c.expires_at, t.c.revoked_at).where(
                    t.c.id == token_id
                )
            ).first()
            if row is None or not hmac.compare_digest(row.digest.encode(), digest.encode()):
                return None
            when = now_ms() if at is None else int(at)
            if row.revoked_at is not None or (
                row.expires_at is not None and when >= row.expires_at
            ):
                return None
            return _load_user(conn, row.user_id)

        result: User | None = self._read(read)
        return result
