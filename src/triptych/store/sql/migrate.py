"""Apply alembic migrations automatically, once, even when many processes open a new store.

Fast path: one query compares the database's revision with :data:`HEAD`. Only when they differ
does a process take a lock (a file lock next to a SQLite database, an advisory lock on
PostgreSQL), re-check, and upgrade; the others wait on the lock and find the work done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from triptych.errors import ConfigError

HEAD = "0010"
_PG_LOCK_KEY = 0x7472697074796368 & 0x7FFFFFFFFFFFFFFF  # "triptych"
MIGRATIONS = Path(__file__).with_name("migrations")


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision, or None for an empty database."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None


def _known_revisions() -> set[str]:
    return {p.stem.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py")}


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        from filelock import FileLock

        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with FileLock(f"{database}.migrate.lock", timeout=120):
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    else:  # pragma: no cover - other dialects are not supported yet
        yield


def _alembic_upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def upgrade(engine: Engine) -> None:
    """Bring the database to :data:`HEAD`; refuse a database newer than this triptych."""
    revision = current_revision(engine)
    if revision == HEAD:
        return
    if revision is not None and revision not in _known_revisions():
        raise ConfigError(
            f"the database schema ({revision}) is newer than this triptych knows ({HEAD})",
            hint="upgrade triptych: pip install -U triptych",
        )
    with _migration_lock(engine):
        if current_revision(engine) != HEAD:
            _alembic_upgrade(engine)
