"""The rest of a run's triptych: the environments runs ran in, and the data they read (mixed
into :class:`SqlStore`; the code state is a column of the run)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from triptych.errors import NotFound
from triptych.store import base
from triptych.store.base import now_ms
from triptych.store.entities import DataInput, Environment
from triptych.store.sql import schema as db


class SqlProvenance:
    """Environments (by digest, written once) and the inputs logged on runs."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _insert_ignore: Callable[..., None]
    _run_pk: Callable[..., tuple[int, str]]

    def _check_environment(self, conn: Connection, digest: str) -> None:
        """Raise NotFound unless the environment is stored (looked up: SQLite's foreign key
        error does not say which key failed)."""
        found = conn.execute(
            select(db.environments.c.digest).where(db.environments.c.digest == digest)
        ).first()
        if found is None:
            raise NotFound(
                f"environment {digest!r} is not stored",
                hint="store it first (put_environment), or log without one",
            )

    def put_environment(self, environment: Environment) -> None:
        row = {
            "digest": environment.digest,
            "python": environment.python,
            "platform": environment.platform[: base.MAX_KEY_LENGTH],
            "packages": json.dumps(dict(environment.packages), sort_keys=True),
            "creation_time": now_ms(),
        }
        self._write(lambda conn: self._insert_ignore(conn, db.environments, [row]))

    def get_environment(self, digest: str) -> Environment:
        def read(conn: Connection) -> Environment:
            row = conn.execute(
                select(db.environments).where(db.environments.c.digest == digest)
            ).first()
            if row is None:
                raise NotFound(f"environment {digest!r} not found")
            return Environment(row.digest, row.python, row.platform, json.loads(row.packages))

        return self._read(read)

    def log_inputs(self, run_id: str, inputs: Sequence[DataInput]) -> None:
        for item in inputs:
            base.validate_name("input", item.name)

        def write(conn: Connection) -> None:
            pk, _ = self._run_pk(conn, run_id)
            self._insert_ignore(
                conn,
                db.run_inputs,
                [
                    {
                        "run_id": pk,
                        "name": i.name,
                        "digest": i.digest,
                        "rows": i.rows,
                        "schema": json.dumps(dict(i.schema)) if i.schema is not None else None,
                        "source": i.source,
                    }
                    for i in inputs
                ],
            )

        self._write(write)
