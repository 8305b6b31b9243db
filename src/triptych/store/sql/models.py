"""The model registry's half of the SQL store (mixed into :class:`SqlStore`).

Every change of a version or an alias writes its audit event in the same transaction, so the
trail can never disagree with the state it describes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from triptych.errors import NotFound
from triptych.store import base
from triptych.store.base import as_int, now_ms
from triptych.store.entities import ModelEvent, ModelVersion, RegisteredModel
from triptych.store.sql import schema as db
from triptych.store.sql.counters import next_number


class SqlModels:
    """Registered models, versions, aliases and their audit trail."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _write_racing: Callable[..., Any]
    _upsert_values: Callable[..., None]

    # -- helpers ------------------------------------------------------------------------------
    def _model_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(
            select(db.registered_models).where(db.registered_models.c.name == name)
        ).first()
        if row is None:
            raise NotFound(
                f"registered model {name!r} not found", hint="list them with: triptych models list"
            )
        return row

    def _model_version_row(self, conn: Connection, model: Any, version: int) -> Any:
        row = conn.execute(
            select(db.model_versions).where(
                db.model_versions.c.model_id == model.id,
                db.model_versions.c.version == as_int("version", version),
            )
        ).first()
        if row is None:
            raise NotFound(
                f"model {model.name!r} has no version {version}",
                hint=f"list them with: triptych models show {model.name}",
            )
        return row

    def _event(
        self,
        conn: Connection,
        name: str,
        action: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        previous: int | None = None,
        user: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(db.model_events).values(
                model_name=name,
                action=action,
                version=version,
                alias=alias,
                previous_version=previous,
                user=user,
                reason=reason,
                details=json.dumps(dict(details), default=str) if details else None,
                time=now_ms(),
            )
        )

    def _model_versions(
        self, conn: Connection, names: dict[int, str], rows: list[Any]
    ) -> list[ModelVersion]:
        ids = [r.id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        aliases: dict[tuple[int, int], list[str]] = {}
        if rows:
            for vid, k, v in conn.execute(
                select(
                    db.model_version_tags.c.version_id,
                    db.model_version_tags.c.key,
                    db.model_version_tags.c.value,
                ).where(db.model_version_tags.c.version_id.in_(ids))
            ).all():
                tags[vid][k] = v
            model_ids = sorted({r.model_id for r in rows})
            for mid, alias, version in conn.execute(
                select(
                    db.model_aliases.c.model_id,
                    db.model_aliases.c.alias,
                    db.model_aliases.c.version,
                )
                .where(db.model_aliases.c.model_id.in_(model_ids))
                .order_by(db.model_aliases.c.alias)
            ).all():
                aliases.setdefault((mid, version), []).append(alias)
        return [
            ModelVersion(
                name=names[r.model_id],
                version=r.version,
                source=r.source,
                run_id=r.run_id,
                description=r.description,
                tags=tags[r.id],
                user=r.user,
                creation_time=r.creation_time,
                aliases=tuple(aliases.get((r.model_id, r.version), ())),
            )
            for r in rows
        ]

    # -- versions -----------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        base.validate_dataset_name(name, "model")  # the URI-safe rule
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> ModelVersion:
            t = now_ms()
            model = conn.execute(
                select(db.registered_models.c.id).where(db.registered_models.c.name == name)
            ).first()
            if model is None:
                model_id = conn.execute(
                    insert(db.registered_models).values(
                        name=name, last_version=0, creation_time=t, last_update_time=t
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            else:
                model_id = model.id
            # The UPDATE locks the counter row until commit: concurrent registrations queue.
            number = next_number(conn, db.registered_models, model_id, t)
            vid = conn.execute(
                insert(db.model_versions).values(
                    model_id=model_id,
                    version=number,
                    source=source,
                    run_id=run_id,
                    description=description,
                    user=user,
                    creation_time=t,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(db.model_version_tags),
                    [{"version_id": vid, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            self._event(
                conn, name, "register", version=number, user=user, reason=reason,
                details={"source": source, "run_id": run_id},
            )  # fmt: skip
            row = conn.execute(select(db.model_versions).where(db.model_versions.c.id == vid)).one()
            return self._model_versions(conn, {model_id: name}, [row])[0]

        result: ModelVersion = self._write_racing(write)
        return result

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        user: str | None = None,
    ) -> None:
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            row = self._model_version_row(conn, model, version)
            if description is not None:
                conn.execute(
                    update(db.model_versions)
                    .where(db.model_versions.c.id == row.id)
                    .values(description=description)
                )
            if tag_rows:
                self._upsert_values(
                    conn,
                    db.model_version_tags,
                    [{"version_id": row.id, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            details = {"tags": tag_rows, "description": description}
            self._event(conn, name, "update", version=row.version, user=user, details=details)

        self._write(write)

    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, user: str | None = None
    ) -> None:
        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            row = self._model_version_row(conn, model, version)
            done = conn.execute(
                delete(db.model_version_tags).where(
                    db.model_version_tags.c.version_id == row.id,
                    db.model_version_tags.c.key == key,
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"model {name!r} version {row.version} has no tag {key!r}")
            self._event(conn, name, "untag", version=row.version, user=user, details={"key": key})

        self._write(write)

    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int | None:
        base.validate_alias(alias)

        def write(conn: Connection) -> int | None:
            model = self._model_row(conn, name)
            self._model_version_row(conn, model, version)
            previous = conn.execute(
                select(db.model_aliases.c.version).where(
                    db.model_aliases.c.model_id == model.id, db.model_aliases.c.alias == alias
                )
            ).scalar()
            self._upsert_values(
                conn,
                db.model_aliases,
                [{"model_id": model.id, "alias": alias, "version": as_int("version", version)}],
            )
            self._event(
                conn, name, "alias", version=as_int("version", version), alias=alias,
                previous=previous, user=user, reason=reason, details=details,
            )  # fmt: skip
            return int(previous) if previous is not None else None

        result: int | None = self._write(write)
        return result

    def delete_model_alias(
        self, name: str, alias: str, *, user: str | None = None, reason: str | None = None
    ) -> None:
        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            previous = conn.execute(
                select(db.model_aliases.c.version).where(
                    db.model_aliases.c.model_id == model.id, db.model_aliases.c.alias == alias
                )
            ).scalar()
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(
                delete(db.model_aliases).where(
                    db.model_aliases.c.model_id == model.id, db.model_aliases.c.alias == alias
                )
            )
            self._event(
                conn, name, "unalias", alias=alias, previous=previous, user=user, reason=reason
            )

        self._write(write)

    def delete_model_version(
        self, name: str, version: int, *, user: str | None = None, reason: str | None = None
    ) -> None:
        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            row = self._model_version_row(conn, model, version)
            for (alias,) in conn.execute(
                select(db.model_aliases.c.alias).where(
                    db.model_aliases.c.model_id == model.id,
                    db.model_aliases.c.version == row.version,
                )
            ).all():
                conn.execute(
                    delete(db.model_aliases).where(
                        db.model_aliases.c.model_id == model.id, db.model_aliases.c.alias == alias
                    )
                )
                self._event(
                    conn, name, "unalias", alias=alias, previous=row.version, user=user,
                    reason=f"version {row.version} deleted",
                )  # fmt: skip
            conn.execute(delete(db.model_versions).where(db.model_versions.c.id == row.id))
            self._event(conn, name, "delete", version=row.version, user=user, reason=reason)

        self._write(write)

    def record_model_event(
        self,
        name: str,
        action: str,
        *,
        version: int | None = None,
        user: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        base.validate_dataset_name(name, "model")
        self._write(
            lambda conn: self._event(
                conn, name, action, version=version, user=user, reason=reason, details=details
            )
        )

    # -- reads --------------------------------------------------------------------------------
    def _registered(self, conn: Connection, row: Any) -> RegisteredModel:
        latest, count = conn.execute(
            select(func.max(db.model_versions.c.version), func.count()).where(
                db.model_versions.c.model_id == row.id
            )
        ).one()
        aliases = dict(
            conn.execute(
                select(db.model_aliases.c.alias, db.model_aliases.c.version)
                .where(db.model_aliases.c.model_id == row.id)
                .order_by(db.model_aliases.c.alias)
            ).all()
        )
        tags = dict(
            conn.execute(
                select(db.registered_model_tags.c.key, db.registered_model_tags.c.value)
                .where(db.registered_model_tags.c.model_id == row.id)
                .order_by(db.registered_model_tags.c.key)
            ).all()
        )
        return RegisteredModel(
            name=row.name,
            description=row.description,
            latest_version=latest,
            versions=count,
            aliases=aliases,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags=tags,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        result: RegisteredModel = self._read(
            lambda conn: self._registered(conn, self._model_row(conn, name))
        )
        return result

    def list_registered_models(self) -> list[RegisteredModel]:
        def read(conn: Connection) -> list[RegisteredModel]:
            rows = conn.execute(
                select(db.registered_models).order_by(db.registered_models.c.name)
            ).all()
            return [self._registered(conn, r) for r in rows]

        result: list[RegisteredModel] = self._read(read)
        return result

    def get_model_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion:
        def read(conn: Connection) -> ModelVersion:
            model = self._model_row(conn, name)
            number = version
            if alias is not None:
                number = conn.execute(
                    select(db.model_aliases.c.version).where(
                        db.model_aliases.c.model_id == model.id,
                        db.model_aliases.c.alias == alias,
                    )
                ).scalar()
                if number is None:
                    raise NotFound(
                        f"model {name!r} has no alias {alias!r}",
                        hint=f"set one with: triptych models alias {name} {alias} VERSION",
                    )
            if number is None:
                number = conn.execute(
                    select(func.max(db.model_versions.c.version)).where(
                        db.model_versions.c.model_id == model.id
                    )
                ).scalar()
                if number is None:
                    raise NotFound(f"model {name!r} has no versions")
            row = self._model_version_row(conn, model, number)
            return self._model_versions(conn, {model.id: name}, [row])[0]

        result: ModelVersion = self._read(read)
        return result

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        def read(conn: Connection) -> list[ModelVersion]:
            model = self._model_row(conn, name)
            rows = conn.execute(
                select(db.model_versions)
                .where(db.model_versions.c.model_id == model.id)
                .order_by(db.model_versions.c.version)
            ).all()
            return self._model_versions(conn, {model.id: name}, list(rows))

        result: list[ModelVersion] = self._read(read)
        return result

    def model_versions_of_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        def read(conn: Connection) -> list[ModelVersion]:
            if not run_ids:
                return []
            rows = conn.execute(
                select(db.model_versions, db.registered_models.c.name)
                .join(
                    db.registered_models, db.registered_models.c.id == db.model_versions.c.model_id
                )
                .where(db.model_versions.c.run_id.in_(list(run_ids)))
                .order_by(db.registered_models.c.name, db.model_versions.c.version)
            ).all()
            names = {r.model_id: r.name for r in rows}
            return self._model_versions(conn, names, list(rows))

        result: list[ModelVersion] = self._read(read)
        return result

    def model_history(self, name: str, *, until: int | None = None) -> list[ModelEvent]:
        def read(conn: Connection) -> list[ModelEvent]:
            query = select(db.model_events).where(db.model_events.c.model_name == name)
            if until is not None:
                query = query.where(db.model_events.c.time <= until)
            rows = conn.execute(query.order_by(db.model_events.c.time, db.model_events.c.id)).all()
            return [
                ModelEvent(
                    time=r.time,
                    name=r.model_name,
                    action=r.action,
                    version=r.version,
                    alias=r.alias,
                    previous_version=r.previous_version,
                    user=r.user,
                    reason=r.reason,
                    details=json.loads(r.details) if r.details else None,
                )
                for r in rows
            ]

        result: list[ModelEvent] = self._read(read)
        return result
