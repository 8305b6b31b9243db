"""A run's artifact tree in SQL: folder prefixes and the file-or-folder rule."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, func, select

from triptych.errors import Conflict
from triptych.store.sql import schema as db


def under(path: str) -> ColumnElement[bool]:
    """Paths strictly inside folder ``path``.

    A prefix test with ``substr`` rather than a range (``> 'a/' and < 'a0'``), whose meaning
    depends on the server's collation, or LIKE, which would need escaping. It runs after the
    primary-key lookup on ``run_id``, so it only scans one run's entries."""
    prefix = f"{path}/"
    return func.substr(db.artifacts.c.path, 1, len(prefix)) == prefix


def check_tree(conn: Connection, pk: int, path: str, new_paths: set[str]) -> None:
    """A path cannot be both a file and a folder in one run's tree."""
    parts = path.split("/")
    parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
    clash = [p for p in parents if p in new_paths]
    if not clash and parents:
        clash = list(
            conn.execute(
                select(db.artifacts.c.path).where(
                    db.artifacts.c.run_id == pk, db.artifacts.c.path.in_(parents)
                )
            ).scalars()
        )
    if not clash:
        clash = sorted(p for p in new_paths if p.startswith(path + "/"))[:1]
    if not clash:
        inside = conn.execute(
            select(db.artifacts.c.path).where(db.artifacts.c.run_id == pk, under(path)).limit(1)
        ).first()
        clash = [inside[0]] if inside else []
    if clash:
        raise Conflict(
            f"artifact path {path!r} clashes with {clash[0]!r}: a path is either a file or a folder"
        )
