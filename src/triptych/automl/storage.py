"""Where a study lives: in memory, or an Optuna RDB storage next to the triptych store.

``storage="auto"`` puts the study on the triptych store's own database server without mixing
the two schemas: triptych and Optuna both keep their migration state in alembic's default
``alembic_version`` table, so

- **PostgreSQL**: the same database, schema ``optuna`` (created when missing; connections set
  ``search_path=optuna``, so every Optuna table, ``alembic_version`` included, lives there);
- **SQLite**: the file ``optuna.db`` next to the triptych database.

Any other SQLAlchemy URL is used as given (a URL naming the triptych PostgreSQL database gets
the ``optuna`` schema too; the triptych SQLite file itself is refused).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput

SCHEMA = "optuna"
SQLITE_FILE = "optuna.db"
SQLITE_TIMEOUT_S = 60


@dataclass(frozen=True)
class StorageSpec:
    """An RDB storage as plain data (worker processes open the same one)."""

    url: str
    schema: str | None = None
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "schema": self.schema, "engine_kwargs": self.engine_kwargs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StorageSpec:
        return cls(data["url"], data.get("schema"), dict(data.get("engine_kwargs") or {}))

    def describe(self) -> str:
        from triptych.uris import redact

        text = redact(self.url)
        return f"{text} (schema {self.schema})" if self.schema else text


def resolve(storage: Any, tracking_uri: str) -> StorageSpec | None:
    """The storage for ``storage=`` (None: in memory; "auto"; or an RDB URL)."""
    if storage is None:
        return None
    if not isinstance(storage, str) or not storage:
        raise InvalidInput(
            f"storage must be None, 'auto' or a database URL, not {storage!r}",
            hint="e.g. storage='auto' (next to the triptych store) or 'sqlite:///optuna.db'",
        )
    from sqlalchemy.engine import make_url

    from triptych.store.sql.engine import normalise_url

    tracking = normalise_url(tracking_uri)
    if storage == "auto":
        if tracking.startswith(("http://", "https://")):
            raise InvalidInput(
                "storage='auto' needs a database tracking URI, not a triptych server",
                hint="pass the study's database URL: storage='postgresql+psycopg://…'",
            )
        url = make_url(tracking)
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                raise InvalidInput(
                    "storage='auto' needs a file-backed store, not sqlite in memory",
                    hint="pass storage='sqlite:///path/optuna.db'",
                )
            path = Path(url.database).expanduser().resolve().parent / SQLITE_FILE
            return _sqlite(f"sqlite:///{path}")
        return _postgres(tracking)
    target = normalise_url(storage)
    try:
        url = make_url(target)
    except Exception as e:
        raise InvalidInput(f"invalid storage URL: {e}") from None
    if not tracking.startswith(("http://", "https://")) and _same_database(target, tracking):
        if url.get_backend_name() == "sqlite":
            raise InvalidInput(
                "the study cannot share the triptych SQLite file (both use alembic_version)",
                hint="use storage='auto' (optuna.db next to it) or another file",
            )
        return _postgres(target)
    if url.get_backend_name() == "sqlite":
        return _sqlite(target)
    return StorageSpec(target, None, {"pool_pre_ping": True})


def _same_database(a: str, b: str) -> bool:
    from sqlalchemy.engine import make_url

    x, y = make_url(a), make_url(b)
    if x.get_backend_name() != y.get_backend_name():
        return False
    if x.get_backend_name() == "sqlite":
        return bool(x.database and y.database) and (
            Path(str(x.database)).expanduser().resolve()
            == Path(str(y.database)).expanduser().resolve()
        )
    return (x.host, x.port, x.database) == (y.host, y.port, y.database)


def _sqlite(url: str) -> StorageSpec:
    return StorageSpec(url, None, {"connect_args": {"timeout": SQLITE_TIMEOUT_S}})


def _postgres(url: str) -> StorageSpec:
    return StorageSpec(
        url,
        SCHEMA,
        {"pool_pre_ping": True, "connect_args": {"options": f"-c search_path={SCHEMA}"}},
    )


def open_storage(spec: StorageSpec | None) -> Any:
    """An Optuna storage for ``spec`` (None: a fresh in-memory one)."""
    import optuna

    if spec is None:
        return optuna.storages.InMemoryStorage()
    if spec.schema:
        _ensure_schema(spec.url, spec.schema)
    elif spec.url.startswith("sqlite:///"):
        Path(spec.url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(spec.url, engine_kwargs=dict(spec.engine_kwargs))
    except ImportError as e:
        raise InvalidInput(f"cannot open the study storage {spec.describe()}: {e}") from e


def close_storage(storage: Any) -> None:
    """Close an RDB storage's connections now (not when garbage-collected)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _ensure_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        # a concurrent process may create it between the check and the create
        with engine.connect() as conn, contextlib.suppress(IntegrityError, ProgrammingError):
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


def default_study_name(
    digest: str, task: str, metric: str, cv: int, seed: int, space_digest: str
) -> str:
    """The same data, task, metric, folds, seed and space give the same name, so running
    ``fit`` again with a storage continues the study."""
    key = hashlib.sha256(f"{digest}|{space_digest}".encode()).hexdigest()[:12]
    return f"automl-{task}-{metric}-cv{cv}-seed{seed}-{key}"
