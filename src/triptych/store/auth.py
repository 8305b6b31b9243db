"""Users, roles and API tokens of the team server: a contract of its own.

Not part of :class:`~triptych.store.base.MetadataStore`: who may use a server is the
business of the server's own database, never of a client, so the HTTP client does not
implement it. The SQL store does (``store/sql/auth.py``) and passes
``triptych.testing.auth_contract`` on SQLite and PostgreSQL.

A *role* (viewer, editor, admin) is granted to a user on a *project*: an experiment name, or
``*`` for every experiment and everything that belongs to none (datasets, models,
deployments…). A user holds at most one role per project.

A token is stored as its public id and the sha256 of the whole token, never as the token:
the store compares digests with :func:`hmac.compare_digest` and cannot give a token back.

Unless a method says otherwise, the rules of :mod:`triptych.store.base` hold: safe from many
threads and processes, atomic, NotFound for a missing user or token, InvalidInput (nothing
written) for bad values.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from triptych.errors import InvalidInput

ROLES = ("viewer", "editor", "admin")
ALL_PROJECTS = "*"
MAX_PROJECT = 250
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Grant:
    """``role`` on ``project`` (an experiment name, or ``*``)."""

    project: str
    role: str


@dataclass(frozen=True)
class User:
    """A person or a machine account; ``grants`` sorted by project."""

    name: str
    grants: tuple[Grant, ...]
    created_at: int
    created_by: str | None = None

    def role_on(self, project: str) -> str | None:
        """The role granted on exactly ``project`` (``*`` included), or None."""
        for grant in self.grants:
            if grant.project == project:
                return grant.role
        return None


@dataclass(frozen=True)
class ApiToken:
    """What the store knows of a token: never the token itself, nor its digest."""

    id: str
    user: str
    label: str | None
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    created_by: str | None = None

    def active(self, at: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)


def validate_user_name(name: object) -> str:
    if not isinstance(name, str) or not _USER.fullmatch(name):
        raise InvalidInput(
            f"invalid user name {name!r}",
            hint="1-64 characters: letters, digits and _.@+- (starting with a letter or digit)",
        )
    return name


def validate_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", hint=f"one of: {', '.join(ROLES)}")
    assert isinstance(role, str)
    return role


def validate_project(project: object) -> str:
    """``*`` or an experiment name (the names experiments may have)."""
    if project == ALL_PROJECTS:
        return project
    if (
        not isinstance(project, str)
        or not project.strip()
        or len(project) > MAX_PROJECT
        or any(ord(c) < 32 for c in project)
    ):
        raise InvalidInput(
            f"invalid project {project!r}",
            hint="a project is an experiment name, or * for all of them",
        )
    return project


def validate_grants(grants: Mapping[str, str]) -> dict[str, str]:
    return {validate_project(p): validate_role(r) for p, r in dict(grants).items()}


def validate_token_id(token_id: object) -> str:
    if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
        raise InvalidInput(
            f"invalid token id {token_id!r}", hint="list them: triptych server token list"
        )
    return token_id


def validate_digest(digest: object) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidInput("a token digest is 64 lowercase hex digits (sha256)")
    return digest


class AuthStore(ABC):
    """Users, their roles per project, and their API tokens."""

    @abstractmethod
    def create_user(
        self, name: str, grants: Mapping[str, str] | None = None, *, actor: str | None = None
    ) -> User:
        """Create user ``name`` with ``grants`` (project → role), in one transaction. Raises
        AlreadyExists when the name is taken (also when two callers race), InvalidInput for a
        bad name, project or role."""

    @abstractmethod
    def get_user(self, name: str) -> User:
        """User ``name`` with its grants. Raises NotFound."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def grant_role(self, name: str, role: str, project: str = ALL_PROJECTS) -> User:
        """Give ``name`` the role ``role`` on ``project``, replacing the role it had there.
        Raises NotFound for an unknown user, InvalidInput for a bad role or project."""

    @abstractmethod
    def revoke_role(self, name: str, project: str = ALL_PROJECTS) -> User:
        """Take away the role ``name`` has on ``project``. Raises NotFound for an unknown user
        or when it has no role there."""

    @abstractmethod
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
        """Record a token of ``user`` by its public id and the sha256 (hex) of the whole
        token. Raises NotFound for an unknown user, AlreadyExists for a used id, InvalidInput
        for a bad id, digest or expiry."""

    @abstractmethod
    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of ``user`` if given), revoked and expired ones too, newest first.
        Raises NotFound for an unknown user."""

    @abstractmethod
    def revoke_token(self, token_id: str, *, at: int | None = None) -> ApiToken:
        """Revoke a token; from the moment this returns, :meth:`authenticate` refuses it.
        Revoking a revoked token keeps the first time. Raises NotFound."""

    @abstractmethod
    def authenticate(self, token_id: str, digest: str, at: int | None = None) -> User | None:
        """The user whose token has id ``token_id`` and digest ``digest``, when that token is
        neither revoked nor expired at ``at`` (default now); None otherwise, whatever the
        reason (the caller must not learn which). Reads only: no cache is involved."""

    def count_admins(self) -> int:
        """How many users are admin of ``*``."""
        return sum(1 for u in self.list_users() if u.role_on(ALL_PROJECTS) == "admin")
