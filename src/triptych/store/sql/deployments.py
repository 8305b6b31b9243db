"""Deployments and their audit trail in SQL (mixed into :class:`SqlStore`).

A change reads the row under a lock (``FOR UPDATE`` on PostgreSQL; SQLite's write
transactions are already exclusive), checks the expected revision, updates the row guarded
by its current revision and appends the event, all in one transaction. The unique
``(deployment, revision)`` constraint on the trail makes a lost race fail loudly rather than
write two events for one revision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, Conflict, NotFound
from triptych.store.base import now_ms
from triptych.store.deployments import (
    details_json,
    spec_from_dict,
    spec_to_dict,
    validate_action,
    validate_deployment_name,
    validate_reason,
    validate_spec,
)
from triptych.store.entities import Deployment, DeploymentEvent, DeploymentSpec, Thresholds
from triptych.store.sql import schema as db

_HINT = "list them with: triptych deploy list"


def _columns(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "primary_model": spec.primary,
        "canary_model": spec.canary,
        "canary_weight": spec.canary_weight,
        "shadow_model": spec.shadow,
        "thresholds": json.dumps(spec_to_dict(spec)["thresholds"], sort_keys=True),
    }


def _deployment(row: Any) -> Deployment:
    t = json.loads(row.thresholds)
    return Deployment(
        name=row.name,
        primary=row.primary_model,
        canary=row.canary_model,
        canary_weight=int(row.canary_weight),
        shadow=row.shadow_model,
        thresholds=Thresholds(t["max_error_rate"], t["max_p99_ms"], int(t["min_requests"])),
        revision=int(row.revision),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _spec_json(spec: DeploymentSpec | None) -> str | None:
    return None if spec is None else json.dumps(spec_to_dict(spec), sort_keys=True)


def _event(row: Any) -> DeploymentEvent:
    return DeploymentEvent(
        deployment=row.deployment,
        revision=int(row.revision),
        action=row.action,
        actor=row.actor,
        time=row.time,
        before=spec_from_dict(json.loads(row.before)) if row.before else None,
        after=spec_from_dict(json.loads(row.after)) if row.after else None,
        reason=row.reason,
        details=json.loads(row.details) if row.details else None,
    )


class SqlDeployments:
    """Deployments; relies on the transaction helpers of SqlStore."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]

    @staticmethod
    def _locked_row(conn: Connection, name: str, expected_revision: int | None) -> Any:
        t = db.deployments
        row = conn.execute(select(t).where(t.c.name == name).with_for_update()).first()
        if row is None:
            raise NotFound(f"deployment {name!r} not found", hint=_HINT)
        if expected_revision is not None and row.revision != int(expected_revision):
            raise Conflict(
                f"deployment {name!r} is at revision {row.revision}, not {expected_revision}: "
                "it changed since it was read",
                hint=f"look at the change (triptych deploy history {name}) and try again",
            )
        return row

    @staticmethod
    def _append(
        conn: Connection,
        name: str,
        revision: int,
        action: str,
        at: int,
        *,
        before: DeploymentSpec | None,
        after: DeploymentSpec | None,
        actor: str | None,
        reason: str | None,
        details: str | None,
    ) -> None:
        conn.execute(
            insert(db.deployment_events).values(
                deployment=name, revision=revision, action=action, actor=actor, time=at,
                before=_spec_json(before), after=_spec_json(after), reason=reason,
                details=details,
            )
        )  # fmt: skip

    def create_deployment(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        validate_deployment_name(name)
        spec = validate_spec(spec)
        validate_reason(reason)

        def write(conn: Connection) -> Deployment:
            e = db.deployment_events
            last = conn.execute(
                select(func.max(e.c.revision)).where(e.c.deployment == name)
            ).scalar()
            revision, at = int(last or 0) + 1, now_ms()
            conn.execute(
                insert(db.deployments).values(
                    name=name, revision=revision, created_at=at, updated_at=at,
                    created_by=actor, **_columns(spec),
                )
            )  # fmt: skip
            self._append(
                conn, name, revision, "create", at, before=None, after=spec, actor=actor,
                reason=reason, details=None,
            )  # fmt: skip
            row = conn.execute(select(db.deployments).where(db.deployments.c.name == name)).one()
            return _deployment(row)

        try:
            result: Deployment = self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(
                f"deployment {name!r} already exists",
                hint=f"change it (triptych deploy canary/promote {name}) or pick another name",
            ) from e
        return result

    def get_deployment(self, name: str) -> Deployment:
        def read(conn: Connection) -> Deployment:
            t = db.deployments
            row = conn.execute(select(t).where(t.c.name == name)).first()
            if row is None:
                raise NotFound(f"deployment {name!r} not found", hint=_HINT)
            return _deployment(row)

        result: Deployment = self._read(read)
        return result

    def list_deployments(self) -> list[Deployment]:
        def read(conn: Connection) -> list[Deployment]:
            rows = conn.execute(select(db.deployments).order_by(db.deployments.c.name)).all()
            return [_deployment(r) for r in rows]

        result: list[Deployment] = self._read(read)
        return result

    def update_deployment(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        action: str,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Deployment:
        spec = validate_spec(spec)
        validate_action(action)
        validate_reason(reason)
        extra = details_json(details)

        def write(conn: Connection) -> Deployment:
            t = db.deployments
            row = self._locked_row(conn, name, expected_revision)
            revision, at = int(row.revision) + 1, now_ms()
            done = conn.execute(
                update(t)
                .where(t.c.id == row.id, t.c.revision == row.revision)
                .values(revision=revision, updated_at=at, **_columns(spec))
            )
            if done.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
                raise Conflict(f"deployment {name!r} changed during the update; try again")
            self._append(
                conn, name, revision, action, at, before=_deployment(row).spec, after=spec,
                actor=actor, reason=reason, details=extra,
            )  # fmt: skip
            return _deployment(conn.execute(select(t).where(t.c.id == row.id)).one())

        try:
            result: Deployment = self._write(write)
        except SAIntegrityError as e:  # a concurrent writer took this revision first
            raise Conflict(f"deployment {name!r} changed during the update; try again") from e
        return result

    def delete_deployment(
        self,
        name: str,
        *,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        validate_reason(reason)

        def write(conn: Connection) -> None:
            row = self._locked_row(conn, name, expected_revision)
            conn.execute(delete(db.deployments).where(db.deployments.c.id == row.id))
            self._append(
                conn, name, int(row.revision) + 1, "delete", now_ms(),
                before=_deployment(row).spec, after=None, actor=actor, reason=reason,
                details=None,
            )  # fmt: skip

        try:
            self._write(write)
        except SAIntegrityError as e:
            raise Conflict(f"deployment {name!r} changed during the deletion; try again") from e

    def deployment_history(self, name: str, *, limit: int | None = None) -> list[DeploymentEvent]:
        e = db.deployment_events
        query = select(e).where(e.c.deployment == name).order_by(e.c.revision.desc())
        if limit is not None:
            query = query.limit(max(1, int(limit)))

        def read(conn: Connection) -> list[DeploymentEvent]:
            rows = conn.execute(query).all()
            if not rows:
                raise NotFound(f"deployment {name!r} has no history: it never existed", hint=_HINT)
            return [_event(r) for r in reversed(rows)]

        result: list[DeploymentEvent] = self._read(read)
        return result
