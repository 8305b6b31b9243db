"""Addresses: which backend serves a URL, and the ``runs:/`` form.

Schemes map to implementation paths that are imported only when used, so ``import triptych``
never pulls SQLAlchemy, s3fs or psycopg. A missing extra raises with the install command.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from triptych.errors import InvalidInput


@dataclass(frozen=True)
class Backend:
    """Where a scheme is implemented and which extra it needs (``None``: always there)."""

    target: str
    extra: str | None = None
    module: str | None = None  # the optional module whose absence means the extra is missing


METADATA_BACKENDS: dict[str, Backend] = {
    "sqlite": Backend("triptych.store.sql.store:SqlStore"),
    "postgresql": Backend("triptych.store.sql.store:SqlStore", "postgres", "psycopg"),
    "http": Backend("triptych.store.http.client:HttpStore"),
    "https": Backend("triptych.store.http.client:HttpStore"),
}

ARTIFACT_BACKENDS: dict[str, Backend] = {
    "file": Backend("triptych.artifacts.fs:FsspecArtifactStore"),
    "s3": Backend("triptych.artifacts.fs:FsspecArtifactStore", "s3", "s3fs"),
    "http": Backend("triptych.artifacts.http:HttpArtifactStore"),
    "https": Backend("triptych.artifacts.http:HttpArtifactStore"),
}


def scheme_of(url: str) -> str:
    """The scheme family of ``url``: ``postgresql+psycopg://`` → ``postgresql``; a path → file."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def metadata_backend(url: str) -> Backend:
    """The backend for a tracking URL, or a clear error listing the supported schemes."""
    scheme = scheme_of(url)
    if scheme == "postgres":
        scheme = "postgresql"
    try:
        return METADATA_BACKENDS[scheme]
    except KeyError:
        raise InvalidInput(
            f"unsupported tracking URI scheme {scheme!r} in {redact(url)}",
            hint=f"use one of: {', '.join(f'{s}://' for s in METADATA_BACKENDS)}",
        ) from None


def artifact_backend(url: str) -> Backend:
    """The backend for an artifact root URL."""
    scheme = scheme_of(url)
    try:
        return ARTIFACT_BACKENDS[scheme]
    except KeyError:
        raise InvalidInput(
            f"unsupported artifact URI scheme {scheme!r} in {url}",
            hint=f"use one of: {', '.join(f'{s}://' for s in ARTIFACT_BACKENDS)} or a local path",
        ) from None


def redact(url: str) -> str:
    """``url`` with any password replaced, safe for logs and ``triptych info``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class RunArtifactURI:
    """``runs:/<run_id>/<path>``."""

    run_id: str
    path: str


def parse_runs_uri(uri: str) -> RunArtifactURI:
    """Split ``runs:/<run_id>/<path>``; the path is validated later by the artifact layer."""
    if not uri.startswith("runs:/"):
        raise InvalidInput(f"not a runs:/ URI: {uri!r}", hint="use runs:/<run_id>/<path>")
    rest = uri[len("runs:/") :].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidInput(f"no run id in {uri!r}", hint="use runs:/<run_id>/<path>")
    return RunArtifactURI(run_id, path)
