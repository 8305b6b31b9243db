"""A run's artifact tree in SQL (mixed into :class:`SqlStore`): paths pointing at blobs,
folder prefixes, and the rule that a path is a file or a folder, never both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, or_, select

from triptych.artifacts import paths
from triptych.errors import Conflict, InvalidInput, NotFound, UnsafePath
from triptych.store.base import now_ms
from triptych.store.entities import ArtifactEntry
from triptych.store.sql import schema as db


def under(path: str) -> ColumnElement[bool]:
    """Paths strictly inside folder ``path``.

    A prefix test with ``substr`` rather than a range (``> 'a/' and < 'a0'``), whose meaning
    depends on the server's collation, or LIKE, which would need escaping. It runs after the
    primary-key lookup on ``run_id``, so it only scans one run's entries."""
    prefix = f"{path}/"
    return func.substr(db.artifacts.c.path, 1, len(prefix)) == prefix


def canonical(path: str, *, allow_empty: bool = False) -> str:
    """``path`` when it is an artifact path in its canonical form, else UnsafePath.

    Callers normalise with :mod:`triptych.artifacts.paths`; the store checks again because the
    server hands it whatever a raw HTTP request carried (``../x``, ``a\\b``, ``%2e%2e``)."""
    clean = paths.normalise(path, allow_empty=allow_empty)
    if clean != path:
        raise UnsafePath(
            f"artifact path {path!r} is not in its canonical form {clean!r}",
            hint="normalise it with triptych.artifacts.paths.normalise",
        )
    return path


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


class SqlArtifacts:
    """Artifact records of runs; relies on the transaction helpers of ``SqlStore``."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _upsert_values: Callable[..., None]
    _run_pk: Callable[..., tuple[int, str]]

    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        if not entries:
            return
        for e in entries:
            if not e.path or e.digest is None or e.size is None:
                raise InvalidInput(f"artifact entry {e!r} needs a path, a digest and a size")
            canonical(e.path)

        def write(conn: Connection) -> None:
            pk, _ = self._run_pk(conn, run_id)
            new_paths = {e.path for e in entries}
            for path in new_paths:
                check_tree(conn, pk, path, new_paths)
            t = now_ms()
            self._upsert_values(
                conn,
                db.artifacts,
                [
                    {
                        "run_id": pk,
                        "path": e.path,
                        "digest": e.digest,
                        "size": e.size,
                        "creation_time": t,
                    }
                    for e in entries
                ],
            )

        self._write(write)

    def _files_under(self, run_id: str, path: str) -> list[ArtifactEntry]:
        canonical(path, allow_empty=True)

        def read(conn: Connection) -> list[ArtifactEntry]:
            pk, _ = self._run_pk(conn, run_id)
            query = select(db.artifacts.c.path, db.artifacts.c.digest, db.artifacts.c.size).where(
                db.artifacts.c.run_id == pk
            )
            if path:
                query = query.where(or_(db.artifacts.c.path == path, under(path)))
            # Sorted here, not by the database: collations differ between servers.
            rows = sorted(conn.execute(query).all(), key=lambda row: row[0])
            return [ArtifactEntry(p, d, s) for p, d, s in rows]

        return self._read(read)

    def walk_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        return self._files_under(run_id, path)

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        prefix = f"{path}/" if path else ""
        children: dict[str, ArtifactEntry] = {}
        for entry in self._files_under(run_id, path):
            if entry.path == path:
                return [entry]  # ``path`` is a file: list it alone
            head, sep, _ = entry.path[len(prefix) :].partition("/")
            child = prefix + head
            if sep:
                children.setdefault(child, ArtifactEntry(child, is_dir=True))
            else:
                children[child] = entry
        return [children[k] for k in sorted(children)]

    def get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        canonical(path)

        def read(conn: Connection) -> ArtifactEntry:
            pk, _ = self._run_pk(conn, run_id)
            row = conn.execute(
                select(db.artifacts.c.digest, db.artifacts.c.size).where(
                    db.artifacts.c.run_id == pk, db.artifacts.c.path == path
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"artifact {path!r} not found in run {run_id}",
                    hint=f"list them with: triptych runs show {run_id}",
                )
            return ArtifactEntry(path, row.digest, row.size)

        return self._read(read)
