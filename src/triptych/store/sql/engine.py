"""Engines tuned per dialect, and retry of transient errors.

SQLite: WAL so readers never block the writer, a busy timeout, ``synchronous=NORMAL`` (durable
at checkpoints, safe against corruption), foreign keys on, case-sensitive LIKE, and
``BEGIN IMMEDIATE`` for write transactions so two writers queue on the busy timeout instead of
deadlocking on a read-to-write upgrade (which SQLite reports at once as "database is locked").
PostgreSQL: psycopg 3, pre-ping, and retry of serialization failures and deadlocks.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from triptych.errors import InvalidInput, StoreUnavailable
from triptych.uris import redact

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE = "triptych_write"
SQLITE_BUSY_TIMEOUT_MS = 60_000
RETRY_ATTEMPTS = 10
_PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
_retried = 0  # transient errors retried by this process (read with ``retries()``)
_retried_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` use psycopg 3, the driver the extra installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def build_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings this module's docstring describes."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as e:
        raise InvalidInput(f"invalid tracking URI {redact(url)!r}: {e}") from e
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    memory = not database or database == ":memory:"
    if not memory:
        assert database is not None
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: locks, busy files, deadlocks, serialization, dropped links."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    if isinstance(error, OperationalError):
        text = str(orig).lower()
        return any(
            s in text
            for s in ("database is locked", "database is busy", "server closed", "connection")
        )
    return False


_OUT_OF_RESOURCES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
)


def out_of_resources(error: BaseException) -> bool:
    """A full or unwritable disk (SQLite) or insufficient resources (PostgreSQL class 53):
    retrying will not help, and the user needs to hear it as the store being unavailable."""
    if not isinstance(error, DBAPIError):
        return False
    if str(getattr(error.orig, "sqlstate", "") or "").startswith("53"):
        return True
    return isinstance(error, OperationalError) and any(
        s in str(error.orig).lower() for s in _OUT_OF_RESOURCES
    )


def retries() -> int:
    """How many transient errors :func:`with_retry` has retried in this process so far."""
    return _retried


def with_retry(fn: Callable[[], T], what: str, attempts: int = RETRY_ATTEMPTS) -> T:
    """Run ``fn``, retrying transient database errors with jittered exponential backoff."""
    delay = 0.02
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DataError as e:  # a value the column cannot hold: NUL in text, an id past int4
            raise InvalidInput(f"{what} refused a value the database cannot store: {e.orig}") from e
        except DBAPIError as e:
            if out_of_resources(e):
                raise StoreUnavailable(
                    f"{what} failed: {e.orig}",
                    hint="the database's disk is full or not writable: free space, then retry",
                ) from e
            if not is_transient(e):
                raise
            if attempt == attempts:
                raise StoreUnavailable(
                    f"{what} failed after {attempts} attempts: {e.orig}",
                    hint="check that the database server is up and reachable",
                ) from e
            log.debug("transient error during %s (attempt %d): %s", what, attempt, e.orig)
            global _retried
            with _retried_lock:
                _retried += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover
