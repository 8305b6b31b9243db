"""API tokens and the accounts that hold them: what ``triptych server create-admin``, ``user``
and ``token`` do, over an :class:`~triptych.store.auth.AuthStore`.

A token is ``tpt_<id>_<secret>``: ``tpt_`` makes a leaked token recognisable to secret
scanners, the 12-hex-digit ``id`` is public (it names the token in lists and revocations),
the secret is ``secrets.token_urlsafe(32)`` (256 bits). The store keeps the id and the sha256
of the whole token; sha256 is enough for a secret of that entropy (no password stretching is
needed: nobody can guess 2^256). The token itself is returned once, by :func:`issue_token`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from triptych.errors import AlreadyExists, InvalidInput
from triptych.store.auth import ALL_PROJECTS, ApiToken, AuthStore, User
from triptych.store.base import now_ms

if TYPE_CHECKING:
    from triptych.store.base import MetadataStore

PREFIX = "tpt_"
SECRET_BYTES = 32
_TOKEN = re.compile(r"^tpt_([0-9a-f]{12})_([A-Za-z0-9_-]{43,})$")
MAX_EXPIRY_DAYS = 3650


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, digest)`` of a well-formed token, None for anything else."""
    match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
    if match is None:
        return None
    return match.group(1), digest_of(match.group(0))


def redact_token(text: str) -> str:
    """``text`` with the secret part of every token replaced (ids stay, for diagnosis)."""
    return re.sub(r"(tpt_[0-9a-f]{12})_[A-Za-z0-9_-]+", r"\1_…", text)


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: ``secret`` is the only copy there will ever be."""

    token: ApiToken
    secret: str

    def __repr__(self) -> str:  # never the secret, also not in a traceback's locals
        return f"IssuedToken(id={self.token.id!r}, user={self.token.user!r}, secret='tpt_…')"


def auth_store(store: MetadataStore | AuthStore) -> AuthStore:
    """``store`` as an AuthStore, or InvalidInput (an HTTP store is not one)."""
    if not isinstance(store, AuthStore):
        raise InvalidInput(
            f"{type(store).__name__} keeps no users or tokens",
            hint="run this against the server's database: --store sqlite:///… or postgresql…",
        )
    return store


def issue_token(
    store: AuthStore,
    user: str,
    *,
    label: str | None = None,
    expires_days: float | None = None,
    actor: str | None = None,
) -> IssuedToken:
    """Create a token for ``user``, valid ``expires_days`` days (forever when None)."""
    expires_at = None
    if expires_days is not None:
        if not 0 < expires_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(
                f"a token expires after more than 0 and at most {MAX_EXPIRY_DAYS} days, "
                f"not {expires_days}"
            )
        expires_at = now_ms() + int(expires_days * 86_400_000)
    for _ in range(5):  # a 48-bit id: a collision is vanishingly rare, but cheap to survive
        token_id = secrets.token_hex(6)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            made = store.add_token(
                user, token_id, digest_of(secret), label=label, expires_at=expires_at, actor=actor
            )
        except AlreadyExists:
            continue
        return IssuedToken(made, secret)
    raise AlreadyExists("could not find a free token id")  # pragma: no cover


def create_admin(store: AuthStore, name: str, *, label: str | None = None) -> IssuedToken:
    """The first (or another) admin of every project, with its first token. Raises
    AlreadyExists when a user of that name exists: an existing user is never changed."""
    store.create_user(name, {ALL_PROJECTS: "admin"}, actor="create-admin")
    return issue_token(store, name, label=label or "created by create-admin", actor="create-admin")


def add_user(store: AuthStore, name: str, role: str | None, project: str, actor: str) -> User:
    return store.create_user(name, {project: role} if role else {}, actor=actor)
