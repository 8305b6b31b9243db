"""Experiments and their tags (mixed into :class:`SqlStore`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, NotFound
from triptych.store import base
from triptych.store.base import now_ms
from triptych.store.entities import Experiment, Lifecycle
from triptych.store.sql import schema as db


class SqlExperiments:
    """Create, read, rename, tag, delete and restore experiments."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _upsert_values: Callable[..., None]
    _experiment_pk: Callable[[str], int]

    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        base.validate_name("experiment", name)
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> str:
            t = now_ms()
            pk = conn.execute(
                insert(db.experiments).values(
                    name=name, lifecycle=Lifecycle.ACTIVE.value, creation_time=t, last_update_time=t
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(db.experiment_tags),
                    [{"experiment_id": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            return str(pk)

        try:
            return self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(
                f"experiment {name!r} already exists",
                hint="use another name, or restore it if it was deleted",
            ) from e

    def _experiment_from_row(self, conn: Connection, row: Any) -> Experiment:
        tag_rows = conn.execute(
            select(db.experiment_tags.c.key, db.experiment_tags.c.value).where(
                db.experiment_tags.c.experiment_id == row.id
            )
        )
        return Experiment(
            experiment_id=str(row.id),
            name=row.name,
            lifecycle=Lifecycle(row.lifecycle),
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags=dict(tag_rows.all()),
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        pk = self._experiment_pk(experiment_id)

        def read(conn: Connection) -> Experiment:
            row = conn.execute(select(db.experiments).where(db.experiments.c.id == pk)).first()
            if row is None:
                raise NotFound(f"experiment {experiment_id!r} not found")
            return self._experiment_from_row(conn, row)

        return self._read(read)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        def read(conn: Connection) -> Experiment | None:
            row = conn.execute(select(db.experiments).where(db.experiments.c.name == name)).first()
            return None if row is None else self._experiment_from_row(conn, row)

        return self._read(read)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        def read(conn: Connection) -> list[Experiment]:
            query = select(db.experiments).order_by(db.experiments.c.id)
            if not include_deleted:
                query = query.where(db.experiments.c.lifecycle == Lifecycle.ACTIVE.value)
            return [self._experiment_from_row(conn, row) for row in conn.execute(query)]

        return self._read(read)

    def _update_experiment(self, experiment_id: str, **values: Any) -> None:
        pk = self._experiment_pk(experiment_id)

        def write(conn: Connection) -> None:
            done = conn.execute(
                update(db.experiments)
                .where(db.experiments.c.id == pk)
                .values(last_update_time=now_ms(), **values)
            )
            if done.rowcount == 0:
                raise NotFound(f"experiment {experiment_id!r} not found")

        self._write(write)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        base.validate_name("experiment", new_name)
        try:
            self._update_experiment(experiment_id, name=new_name)
        except SAIntegrityError as e:
            raise AlreadyExists(f"experiment {new_name!r} already exists") from e

    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> None:
        state = Lifecycle.DELETED if deleted else Lifecycle.ACTIVE
        self._update_experiment(experiment_id, lifecycle=state.value)

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        pk = self._experiment_pk(experiment_id)
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> None:
            self._touch_experiment(conn, experiment_id, pk)
            self._upsert_values(
                conn,
                db.experiment_tags,
                [{"experiment_id": pk, "key": k, "value": v} for k, v in tag_rows.items()],
            )

        self._write(write)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        pk = self._experiment_pk(experiment_id)

        def write(conn: Connection) -> None:
            self._touch_experiment(conn, experiment_id, pk)
            done = conn.execute(
                delete(db.experiment_tags).where(
                    db.experiment_tags.c.experiment_id == pk, db.experiment_tags.c.key == key
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"experiment {experiment_id!r} has no tag {key!r}")

        self._write(write)

    @staticmethod
    def _touch_experiment(conn: Connection, experiment_id: str, pk: int) -> None:
        done = conn.execute(
            update(db.experiments)
            .where(db.experiments.c.id == pk)
            .values(last_update_time=now_ms())
        )
        if done.rowcount == 0:
            raise NotFound(f"experiment {experiment_id!r} not found")
