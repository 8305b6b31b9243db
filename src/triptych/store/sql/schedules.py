"""Pipeline schedules, their firings and trigger events in SQL (mixed into :class:`SqlStore`).

Exactly-once firing rests on one constraint: ``schedule_firings`` is unique on
``(schedule_id, occurrence)``, and a claim is ``INSERT … ON CONFLICT DO NOTHING``. The database
lets one insert through; every other scheduler's insert changes no row and reads as "lost".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, InvalidInput, NotFound
from triptych.store import base
from triptych.store.base import now_ms
from triptych.store.entities import Firing, Schedule, ScheduleSpec, TriggerEvent
from triptych.store.sql import schema as db

MAX_PAYLOAD = 64 * 1024
MAX_ERROR = 8000
TRIGGER_KINDS = ("alert",)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them (a drift score may be)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _payload_json(payload: Mapping[str, Any] | None) -> str | None:
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"an event payload must be a mapping, got {type(payload).__name__}")
    try:
        text = json.dumps(_finite(payload), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise InvalidInput(
            f"event payload is not JSON: {e}", hint="pass strings, numbers, lists and dicts"
        ) from e
    if len(text) > MAX_PAYLOAD:
        raise InvalidInput(
            f"event payload is {len(text)} bytes of JSON; the limit is {MAX_PAYLOAD}"
        )
    return text


class SqlSchedules:
    """Schedules, firings and trigger events; relies on the transaction helpers of SqlStore."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _dialect_insert: Callable[[Any], Any]

    # -- helpers ------------------------------------------------------------------------------
    def _schedule_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(db.schedules).where(db.schedules.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"schedule {name!r} not found",
                hint="list them with: triptych pipeline schedules",
            )
        return row

    @staticmethod
    def _firing(name: str, row: Any) -> Firing:
        return Firing(
            schedule=name,
            occurrence=row.occurrence,
            fired_at=row.fired_at,
            fired_by=row.fired_by,
            status=row.status,
            run_id=row.run_id,
            error=row.error,
            finished_at=row.finished_at,
        )

    def _schedules(self, conn: Connection, rows: list[Any]) -> list[Schedule]:
        """Entities for ``rows`` with each one's latest firing, in one more query."""
        names = {r.id: r.name for r in rows}
        last: dict[int, Firing] = {}
        if rows:
            latest = (
                select(func.max(db.schedule_firings.c.id))
                .where(db.schedule_firings.c.schedule_id.in_(list(names)))
                .group_by(db.schedule_firings.c.schedule_id)
            )
            for f in conn.execute(
                select(db.schedule_firings).where(db.schedule_firings.c.id.in_(latest))
            ).all():
                last[f.schedule_id] = self._firing(names[f.schedule_id], f)
        return [
            Schedule(
                schedule_id=r.id,
                name=r.name,
                pipeline=r.pipeline,
                workdir=r.workdir,
                kind=r.kind,
                spec=r.spec,
                params=json.loads(r.params),
                executor=r.executor,
                enabled=bool(r.enabled),
                created_at=r.created_at,
                created_by=r.created_by,
                active_since=r.active_since,
                last_firing=last.get(r.id),
            )
            for r in rows
        ]

    # -- schedules ----------------------------------------------------------------------------
    def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        params = base.validate_schedule_spec(spec)

        def write(conn: Connection) -> Schedule:
            t = now_ms()
            pk = conn.execute(
                insert(db.schedules).values(
                    name=spec.name,
                    pipeline=spec.pipeline,
                    workdir=spec.workdir,
                    kind=spec.kind,
                    spec=spec.spec,
                    params=json.dumps(params, sort_keys=True),
                    executor=spec.executor,
                    enabled=True,
                    created_at=t,
                    created_by=spec.created_by,
                    active_since=t,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(db.schedules).where(db.schedules.c.id == pk)).one()
            return self._schedules(conn, [row])[0]

        try:
            result: Schedule = self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(
                f"schedule {spec.name!r} already exists",
                hint="pick another --name, or remove it: triptych pipeline unschedule " + spec.name,
            ) from e
        return result

    def get_schedule(self, name: str) -> Schedule:
        result: Schedule = self._read(
            lambda conn: self._schedules(conn, [self._schedule_row(conn, name)])[0]
        )
        return result

    def list_schedules(self, enabled_only: bool = False) -> list[Schedule]:
        def read(conn: Connection) -> list[Schedule]:
            query = select(db.schedules).order_by(db.schedules.c.name)
            if enabled_only:
                query = query.where(db.schedules.c.enabled.is_(True))
            return self._schedules(conn, list(conn.execute(query).all()))

        result: list[Schedule] = self._read(read)
        return result

    def delete_schedule(self, name: str) -> None:
        def write(conn: Connection) -> None:
            row = self._schedule_row(conn, name)
            conn.execute(
                delete(db.schedule_firings).where(db.schedule_firings.c.schedule_id == row.id)
            )
            conn.execute(delete(db.schedules).where(db.schedules.c.id == row.id))

        self._write(write)

    def set_schedule_enabled(self, name: str, enabled: bool, *, at: int | None = None) -> None:
        def write(conn: Connection) -> None:
            row = self._schedule_row(conn, name)
            values: dict[str, Any] = {"enabled": bool(enabled)}
            if enabled and not row.enabled:
                values["active_since"] = int(at if at is not None else now_ms())
            conn.execute(update(db.schedules).where(db.schedules.c.id == row.id).values(values))

        self._write(write)

    # -- firings ------------------------------------------------------------------------------
    def claim_firing(
        self,
        schedule_id: int,
        occurrence: str,
        *,
        at: int | None = None,
        fired_by: str | None = None,
    ) -> bool:
        if (
            not isinstance(occurrence, str)
            or not occurrence
            or len(occurrence) > base.MAX_KEY_LENGTH
        ):
            raise InvalidInput(f"invalid occurrence {occurrence!r}")
        stmt = (
            self._dialect_insert(db.schedule_firings)
            .values(
                schedule_id=int(schedule_id),
                occurrence=occurrence,
                fired_at=int(at if at is not None else now_ms()),
                fired_by=fired_by,
                status="RUNNING",
            )
            .on_conflict_do_nothing(index_elements=["schedule_id", "occurrence"])
            .returning(db.schedule_firings.c.id)  # a row back: this caller won the claim
        )

        def write(conn: Connection) -> bool:
            enabled = conn.execute(
                select(db.schedules.c.enabled).where(db.schedules.c.id == int(schedule_id))
            ).first()
            if enabled is None:
                raise NotFound(f"schedule {schedule_id} not found")
            if not enabled[0]:
                return False
            return conn.execute(stmt).first() is not None

        try:
            result: bool = self._write(write)
        except SAIntegrityError as e:  # the schedule was deleted under us
            raise NotFound(f"schedule {schedule_id} not found") from e
        return result

    def record_firing_result(
        self,
        schedule_id: int,
        occurrence: str,
        *,
        status: str,
        run_id: str | None = None,
        error: str | None = None,
        at: int | None = None,
    ) -> None:
        if status not in ("FINISHED", "FAILED"):
            raise InvalidInput(f"invalid firing status {status!r}", hint="use FINISHED or FAILED")
        if error is not None and len(error) > MAX_ERROR:
            error = "…" + error[-MAX_ERROR:]  # the end of a traceback says the most

        def write(conn: Connection) -> None:
            done = conn.execute(
                update(db.schedule_firings)
                .where(
                    db.schedule_firings.c.schedule_id == int(schedule_id),
                    db.schedule_firings.c.occurrence == occurrence,
                )
                .values(
                    status=status,
                    run_id=run_id,
                    error=error,
                    finished_at=int(at if at is not None else now_ms()),
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"schedule {schedule_id} has no firing {occurrence!r}")

        self._write(write)

    def list_firings(self, name: str, limit: int = 20) -> list[Firing]:
        def read(conn: Connection) -> list[Firing]:
            row = self._schedule_row(conn, name)
            rows = conn.execute(
                select(db.schedule_firings)
                .where(db.schedule_firings.c.schedule_id == row.id)
                .order_by(db.schedule_firings.c.id.desc())
                .limit(max(1, int(limit)))
            ).all()
            return [self._firing(name, f) for f in rows]

        result: list[Firing] = self._read(read)
        return result

    # -- trigger events -----------------------------------------------------------------------
    def add_trigger_event(
        self, kind: str, name: str, payload: Mapping[str, Any] | None = None
    ) -> TriggerEvent:
        if kind not in TRIGGER_KINDS:
            raise InvalidInput(
                f"invalid trigger event kind {kind!r}", hint=f"use {', '.join(TRIGGER_KINDS)}"
            )
        base.validate_key(kind, name)
        text = _payload_json(payload)

        def write(conn: Connection) -> TriggerEvent:
            t = now_ms()
            pk = conn.execute(
                insert(db.trigger_events).values(kind=kind, name=name, payload=text, time=t)
            ).inserted_primary_key[0]  # type: ignore[index]
            return TriggerEvent(int(pk), kind, name, json.loads(text) if text else {}, t)

        result: TriggerEvent = self._write(write)
        return result

    def list_trigger_events(
        self,
        kind: str,
        *,
        name: str | None = None,
        since: int | None = None,
        limit: int = 100,
    ) -> list[TriggerEvent]:
        t = db.trigger_events
        query = select(t).where(t.c.kind == kind)
        if name is not None:
            query = query.where(t.c.name == name)
        if since is not None:
            query = query.where(t.c.time >= int(since))
        query = query.order_by(t.c.time.desc(), t.c.id.desc()).limit(max(1, int(limit)))

        def read(conn: Connection) -> list[TriggerEvent]:
            return [
                TriggerEvent(
                    r.id, r.kind, r.name, json.loads(r.payload) if r.payload else {}, r.time
                )
                for r in conn.execute(query).all()
            ]

        result: list[TriggerEvent] = self._read(read)
        return result
