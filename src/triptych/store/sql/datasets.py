"""The dataset registry's half of the SQL store (mixed into :class:`SqlStore`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, select, update

from triptych.errors import InvalidInput, NotFound
from triptych.store import base
from triptych.store.base import as_int, now_ms
from triptych.store.entities import Dataset, DatasetVersion, DatasetVersionSpec
from triptych.store.sql import schema as db
from triptych.store.sql.counters import next_number

T = TypeVar("T")


def _json(value: Mapping[str, Any] | None) -> str | None:
    # Not sorted: schema and profile keys are column names, and their order is the table's.
    return None if value is None else json.dumps(value, allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SqlDatasets:
    """Dataset tables; relies on the transaction helpers of ``SqlStore``."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _write_racing: Callable[..., Any]
    _upsert_values: Callable[..., None]

    def _dataset_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(db.datasets).where(db.datasets.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"dataset {name!r} not found", hint="list datasets with: triptych data list"
            )
        return row

    def _version_row(self, conn: Connection, name: str, version: int | None) -> Any:
        ds = self._dataset_row(conn, name)
        query = select(db.dataset_versions).where(db.dataset_versions.c.dataset_id == ds.id)
        if version is None:
            query = query.order_by(db.dataset_versions.c.version.desc()).limit(1)
        else:
            query = query.where(db.dataset_versions.c.version == as_int("version", version))
        row = conn.execute(query).first()
        if row is None:
            which = "no versions" if version is None else f"no version {version}"
            raise NotFound(
                f"dataset {name!r} has {which}", hint=f"list them with: triptych data show {name}"
            )
        return row

    def _versions(self, conn: Connection, name: str, rows: list[Any]) -> list[DatasetVersion]:
        tags: dict[int, dict[str, str]] = {r.id: {} for r in rows}
        if rows:
            for vid, k, v in conn.execute(
                select(
                    db.dataset_version_tags.c.version_id,
                    db.dataset_version_tags.c.key,
                    db.dataset_version_tags.c.value,
                ).where(db.dataset_version_tags.c.version_id.in_(list(tags)))
            ).all():
                tags[vid][k] = v
        return [
            DatasetVersion(
                name=name,
                version=r.version,
                digest=r.digest,
                blob_digest=r.blob_digest,
                rows=r.rows,
                size=r.size,
                schema=_load(r.schema),
                profile=_load(r.profile),
                source=r.source,
                description=r.description,
                tags=tags[r.id],
                creator_run_id=r.creator_run_id,
                creation_time=r.creation_time,
            )
            for r in rows
        ]

    # -- writes -------------------------------------------------------------------------------
    def create_dataset_version(self, spec: DatasetVersionSpec) -> tuple[DatasetVersion, bool]:
        base.validate_dataset_name(spec.name)
        tag_rows = base.validate_tags(spec.tags)
        if spec.rows < 0 or spec.size < 0:
            raise InvalidInput("rows and size cannot be negative")

        def write(conn: Connection) -> tuple[DatasetVersion, bool]:
            t = now_ms()
            ds = conn.execute(
                select(db.datasets.c.id, db.datasets.c.schema)
                .where(db.datasets.c.name == spec.name)
                .with_for_update()  # PostgreSQL: one writer per dataset numbers versions
            ).first()
            if ds is None:
                ds_id = conn.execute(
                    insert(db.datasets).values(
                        name=spec.name,
                        schema=_json(spec.schema),
                        last_version=0,
                        creation_time=t,
                        last_update_time=t,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            else:
                ds_id = ds.id
                if ds.schema is None and spec.schema is not None:
                    conn.execute(
                        update(db.datasets)
                        .where(db.datasets.c.id == ds_id)
                        .values(schema=_json(spec.schema))
                    )
            same = conn.execute(
                select(db.dataset_versions).where(
                    db.dataset_versions.c.dataset_id == ds_id,
                    db.dataset_versions.c.digest == spec.digest,
                )
            ).first()
            if same is not None:
                return self._versions(conn, spec.name, [same])[0], False
            # The counter row is locked by this UPDATE until commit: concurrent writers
            # queue here, so numbers have no gaps, no duplicates, and are never reused.
            number = next_number(conn, db.datasets, ds_id, t)
            vid = conn.execute(
                insert(db.dataset_versions).values(
                    dataset_id=ds_id,
                    version=number,
                    digest=spec.digest,
                    blob_digest=spec.blob_digest,
                    rows=spec.rows,
                    size=spec.size,
                    schema=_json(spec.schema),
                    profile=_json(spec.profile),
                    source=spec.source,
                    description=spec.description,
                    creator_run_id=spec.creator_run_id,
                    creation_time=t,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(db.dataset_version_tags),
                    [{"version_id": vid, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            row = conn.execute(
                select(db.dataset_versions).where(db.dataset_versions.c.id == vid)
            ).one()
            return self._versions(conn, spec.name, [row])[0], True

        result: tuple[DatasetVersion, bool] = self._write_racing(write)
        return result

    def update_dataset_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> None:
        tag_rows = base.validate_tags(tags)

        def write(conn: Connection) -> None:
            row = self._version_row(conn, name, version)
            values: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
            if profile is not None:
                values["profile"] = _json(profile)
            if values:
                conn.execute(
                    update(db.dataset_versions)
                    .where(db.dataset_versions.c.id == row.id)
                    .values(**values)
                )
            if tag_rows:
                self._upsert_values(
                    conn,
                    db.dataset_version_tags,
                    [{"version_id": row.id, "key": k, "value": v} for k, v in tag_rows.items()],
                )

        self._write(write)

    def set_dataset_schema(self, name: str, schema: Mapping[str, Any]) -> None:
        def write(conn: Connection) -> None:
            ds = self._dataset_row(conn, name)
            conn.execute(
                update(db.datasets)
                .where(db.datasets.c.id == ds.id)
                .values(schema=_json(schema), last_update_time=now_ms())
            )

        self._write(write)

    def delete_dataset_version(self, name: str, version: int) -> None:
        def write(conn: Connection) -> None:
            row = self._version_row(conn, name, version)
            conn.execute(delete(db.dataset_versions).where(db.dataset_versions.c.id == row.id))

        self._write(write)

    # -- reads --------------------------------------------------------------------------------
    def _dataset(self, conn: Connection, row: Any) -> Dataset:
        latest, count = conn.execute(
            select(func.max(db.dataset_versions.c.version), func.count()).where(
                db.dataset_versions.c.dataset_id == row.id
            )
        ).one()
        return Dataset(
            name=row.name,
            description=row.description,
            schema=_load(row.schema),
            latest_version=latest,
            versions=count,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
        )

    def get_dataset(self, name: str) -> Dataset:
        result: Dataset = self._read(
            lambda conn: self._dataset(conn, self._dataset_row(conn, name))
        )
        return result

    def list_datasets(self) -> list[Dataset]:
        def read(conn: Connection) -> list[Dataset]:
            rows = conn.execute(select(db.datasets).order_by(db.datasets.c.name)).all()
            return [self._dataset(conn, r) for r in rows]

        result: list[Dataset] = self._read(read)
        return result

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        def read(conn: Connection) -> DatasetVersion:
            return self._versions(conn, name, [self._version_row(conn, name, version)])[0]

        result: DatasetVersion = self._read(read)
        return result

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        def read(conn: Connection) -> list[DatasetVersion]:
            ds = self._dataset_row(conn, name)
            rows = conn.execute(
                select(db.dataset_versions)
                .where(db.dataset_versions.c.dataset_id == ds.id)
                .order_by(db.dataset_versions.c.version)
            ).all()
            return self._versions(conn, name, list(rows))

        result: list[DatasetVersion] = self._read(read)
        return result

    def versions_with_digest(self, digest: str) -> list[tuple[str, int]]:
        def read(conn: Connection) -> list[tuple[str, int]]:
            query = (
                select(db.datasets.c.name, db.dataset_versions.c.version)
                .join(db.datasets, db.datasets.c.id == db.dataset_versions.c.dataset_id)
                .where(db.dataset_versions.c.digest == digest)
                .order_by(db.datasets.c.name, db.dataset_versions.c.version)
            )
            return [(name, version) for name, version in conn.execute(query).all()]

        result: list[tuple[str, int]] = self._read(read)
        return result

    def runs_with_input(self, digest: str) -> list[str]:
        def read(conn: Connection) -> list[str]:
            query = (
                select(db.runs.c.uuid)
                .join(db.run_inputs, db.run_inputs.c.run_id == db.runs.c.id)
                .where(db.run_inputs.c.digest == digest)
                .group_by(db.runs.c.uuid, db.runs.c.start_time, db.runs.c.id)
                .order_by(db.runs.c.start_time, db.runs.c.id)
            )
            return list(conn.execute(query).scalars())

        result: list[str] = self._read(read)
        return result

    def blob_in_use(self, blob_digest: str) -> bool:
        def read(conn: Connection) -> bool:
            versions = conn.execute(
                select(db.dataset_versions.c.id)
                .where(db.dataset_versions.c.blob_digest == blob_digest)
                .limit(1)
            ).first()
            files = conn.execute(
                select(db.artifacts.c.run_id).where(db.artifacts.c.digest == blob_digest).limit(1)
            ).first()
            return versions is not None or files is not None

        result: bool = self._read(read)
        return result
