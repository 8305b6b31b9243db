"""Registered models themselves (mixed into :class:`SqlStore`): created empty, described,
tagged, renamed and deleted, each change with its audit event in the same transaction.
Their versions and aliases are in :mod:`triptych.store.sql.models`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, NotFound
from triptych.store import base
from triptych.store.base import now_ms
from triptych.store.entities import RegisteredModel
from triptych.store.sql import schema as db


class SqlRegisteredModels:
    """Create, describe, tag, rename and delete registered models."""

    _write: Callable[..., Any]
    _upsert_values: Callable[..., None]
    _model_row: Callable[..., Any]
    _registered: Callable[..., RegisteredModel]
    _event: Callable[..., None]

    def _touch(self, conn: Connection, model_id: int) -> None:
        conn.execute(
            update(db.registered_models)
            .where(db.registered_models.c.id == model_id)
            .values(last_update_time=now_ms())
        )

    # -- registered models --------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        base.validate_dataset_name(name, "model")  # the URI-safe rule
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> RegisteredModel:
            if conn.execute(
                select(db.registered_models.c.id).where(db.registered_models.c.name == name)
            ).first():
                raise _taken(name)
            t = now_ms()
            model_id = conn.execute(
                insert(db.registered_models).values(
                    name=name,
                    description=description,
                    last_version=0,
                    creation_time=t,
                    last_update_time=t,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(db.registered_model_tags),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            details = {"description": description, "tags": tag_rows}
            self._event(conn, name, "create", user=user, reason=reason, details=details)
            return self._registered(conn, self._model_row(conn, name))

        try:
            result: RegisteredModel = self._write(write)
        except SAIntegrityError as e:  # a concurrent writer created it first
            raise _taken(name) from e
        return result

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            if description is not None:
                conn.execute(
                    update(db.registered_models)
                    .where(db.registered_models.c.id == model.id)
                    .values(description=description)
                )
            self._upsert_values(
                conn,
                db.registered_model_tags,
                [{"model_id": model.id, "key": k, "value": v} for k, v in tag_rows.items()],
            )
            self._touch(conn, model.id)
            details = {"tags": tag_rows, "description": description}
            self._event(conn, name, "update", user=user, details=details)

        self._write(write)

    def delete_registered_model_tag(self, name: str, key: str, *, user: str | None = None) -> None:
        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            done = conn.execute(
                delete(db.registered_model_tags).where(
                    db.registered_model_tags.c.model_id == model.id,
                    db.registered_model_tags.c.key == key,
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"model {name!r} has no tag {key!r}")
            self._touch(conn, model.id)
            self._event(conn, name, "untag", user=user, details={"key": key})

        self._write(write)

    def rename_registered_model(
        self, name: str, new_name: str, *, user: str | None = None, reason: str | None = None
    ) -> RegisteredModel:
        base.validate_dataset_name(new_name, "model")

        def write(conn: Connection) -> RegisteredModel:
            model = self._model_row(conn, name)
            if new_name == name:
                return self._registered(conn, model)
            if conn.execute(
                select(db.registered_models.c.id).where(db.registered_models.c.name == new_name)
            ).first():
                raise _taken(new_name)
            conn.execute(
                update(db.registered_models)
                .where(db.registered_models.c.id == model.id)
                .values(name=new_name, last_update_time=now_ms())
            )
            # The trail is keyed by name: it follows the model to its new name.
            conn.execute(
                update(db.model_events)
                .where(db.model_events.c.model_name == name)
                .values(model_name=new_name)
            )
            details = {"from": name, "to": new_name}
            self._event(conn, new_name, "rename", user=user, reason=reason, details=details)
            return self._registered(conn, self._model_row(conn, new_name))

        try:
            result: RegisteredModel = self._write(write)
        except SAIntegrityError as e:
            raise _taken(new_name) from e
        return result

    def delete_registered_model(
        self, name: str, *, user: str | None = None, reason: str | None = None
    ) -> None:
        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            for alias, version in conn.execute(
                select(db.model_aliases.c.alias, db.model_aliases.c.version)
                .where(db.model_aliases.c.model_id == model.id)
                .order_by(db.model_aliases.c.alias)
            ).all():
                self._event(
                    conn, name, "unalias", alias=alias, previous=version, user=user,
                    reason="model deleted",
                )  # fmt: skip
            for (number,) in conn.execute(
                select(db.model_versions.c.version)
                .where(db.model_versions.c.model_id == model.id)
                .order_by(db.model_versions.c.version)
            ).all():
                self._event(conn, name, "delete", version=number, user=user, reason="model deleted")
            conn.execute(delete(db.model_versions).where(db.model_versions.c.model_id == model.id))
            for table in (db.model_aliases, db.registered_model_tags, db.alias_policies):
                conn.execute(delete(table).where(table.c.model_id == model.id))
            conn.execute(delete(db.alias_requests).where(db.alias_requests.c.model_id == model.id))
            conn.execute(delete(db.registered_models).where(db.registered_models.c.id == model.id))
            self._event(conn, name, "delete", user=user, reason=reason)

        self._write(write)


def _taken(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"registered model {name!r} already exists", hint="use another name, or rename that one"
    )
