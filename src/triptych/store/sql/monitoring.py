"""Monitors and alerts in SQL (mixed into :class:`SqlStore`).

Raising an alert reads the active alert of its key under a lock and counts the breach on it,
or inserts a new one. Two processes inserting the same new alert collide on the unique
``active_key``; the loser retries and then finds the winner's row to count on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import AlreadyExists, Conflict, NotFound
from triptych.store.base import as_int, now_ms
from triptych.store.entities import Alert, Monitor, MonitorSpec, RaisedAlert
from triptych.store.monitoring import (
    payload_json,
    policy_from_json,
    policy_json,
    thresholds_from_json,
    thresholds_json,
    validate_alert,
    validate_monitor_name,
    validate_monitor_spec,
    validate_status,
)
from triptych.store.sql import schema as db

_HINT = "list them with: triptych monitor list"


def _columns(spec: MonitorSpec) -> dict[str, Any]:
    return {
        "reference": spec.reference,
        "window_s": spec.window_s,
        "thresholds": thresholds_json(spec.thresholds),
        "webhooks": json.dumps(list(spec.webhooks)),
        "cooldown_s": spec.cooldown_s,
        "policy": policy_json(spec.policy),
    }


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row.name,
        reference=row.reference,
        window_s=int(row.window_s),
        thresholds=thresholds_from_json(row.thresholds),
        webhooks=tuple(json.loads(row.webhooks)),
        cooldown_s=int(row.cooldown_s),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        policy=policy_from_json(row.policy),
    )


def _alert(row: Any) -> Alert:
    return Alert(
        id=int(row.id),
        monitor=row.monitor,
        kind=row.kind,
        key=row.key,
        severity=row.severity,
        message=row.message,
        payload=json.loads(row.payload) if row.payload else None,
        status=row.status,
        count=int(row.count),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


def _active_key(monitor: str, kind: str, key: str) -> str:
    return f"{monitor}\n{kind}\n{key}"


class SqlMonitoring:
    """Monitors and alerts; relies on the transaction helpers of SqlStore."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _write_racing: Callable[..., Any]

    def create_monitor(self, name: str, spec: MonitorSpec, *, actor: str | None = None) -> Monitor:
        name = validate_monitor_name(name)
        spec = validate_monitor_spec(spec)

        def write(conn: Connection) -> Monitor:
            at = now_ms()
            conn.execute(
                insert(db.monitors).values(
                    name=name, created_at=at, updated_at=at, created_by=actor, **_columns(spec)
                )
            )
            return _monitor(
                conn.execute(select(db.monitors).where(db.monitors.c.name == name)).one()
            )

        try:
            result: Monitor = self._write(write)
        except SAIntegrityError as e:
            raise AlreadyExists(
                f"deployment {name!r} already has a monitor",
                hint=f"change it, or delete it first (triptych monitor delete {name})",
            ) from e
        return result

    def get_monitor(self, name: str) -> Monitor:
        def read(conn: Connection) -> Monitor:
            row = conn.execute(select(db.monitors).where(db.monitors.c.name == name)).first()
            if row is None:
                raise NotFound(f"monitor {name!r} not found", hint=_HINT)
            return _monitor(row)

        result: Monitor = self._read(read)
        return result

    def list_monitors(self) -> list[Monitor]:
        def read(conn: Connection) -> list[Monitor]:
            rows = conn.execute(select(db.monitors).order_by(db.monitors.c.name)).all()
            return [_monitor(r) for r in rows]

        result: list[Monitor] = self._read(read)
        return result

    def update_monitor(self, name: str, spec: MonitorSpec) -> Monitor:
        spec = validate_monitor_spec(spec)

        def write(conn: Connection) -> Monitor:
            t = db.monitors
            done = conn.execute(
                update(t).where(t.c.name == name).values(updated_at=now_ms(), **_columns(spec))
            )
            if done.rowcount != 1:
                raise NotFound(f"monitor {name!r} not found", hint=_HINT)
            return _monitor(conn.execute(select(t).where(t.c.name == name)).one())

        result: Monitor = self._write(write)
        return result

    def delete_monitor(self, name: str) -> None:
        def write(conn: Connection) -> None:
            done = conn.execute(delete(db.monitors).where(db.monitors.c.name == name))
            if done.rowcount != 1:
                raise NotFound(f"monitor {name!r} not found", hint=_HINT)

        self._write(write)

    def raise_alert(
        self,
        monitor: str,
        kind: str,
        key: str,
        severity: str,
        message: str,
        payload: Mapping[str, Any] | None = None,
        *,
        cooldown_s: int = 0,
        at: int | None = None,
    ) -> RaisedAlert:
        validate_monitor_name(monitor)
        validate_alert(kind, key, severity, message)
        body = payload_json(payload)
        active = _active_key(monitor, kind, key)
        a = db.alerts

        def write(conn: Connection) -> RaisedAlert:
            now = now_ms() if at is None else int(at)
            change = {"count": a.c.count + 1, "last_seen": now, "message": message,
                      "payload": body, "severity": severity}  # fmt: skip
            row = conn.execute(select(a).where(a.c.active_key == active).with_for_update()).first()
            outcome = "deduplicated"
            if row is None and cooldown_s > 0:
                row = conn.execute(
                    select(a)
                    .where(a.c.monitor == monitor, a.c.kind == kind, a.c.key == key)
                    .where(a.c.first_seen > now - int(cooldown_s) * 1000)
                    .order_by(a.c.first_seen.desc(), a.c.id.desc())
                    .limit(1)
                    .with_for_update()
                ).first()
                outcome = "cooled"
            if row is not None:
                conn.execute(update(a).where(a.c.id == row.id).values(**change))
                return RaisedAlert(
                    _alert(conn.execute(select(a).where(a.c.id == row.id)).one()), outcome
                )
            new_id = conn.execute(
                insert(a).values(
                    monitor=monitor, kind=kind, key=key, severity=severity, message=message,
                    payload=body, status="open", count=1, first_seen=now, last_seen=now,
                    active_key=active,
                ).returning(a.c.id)
            ).scalar_one()  # fmt: skip
            return RaisedAlert(
                _alert(conn.execute(select(a).where(a.c.id == new_id)).one()), "raised"
            )

        result: RaisedAlert = self._write_racing(write)
        return result

    def get_alert(self, alert_id: int) -> Alert:
        def read(conn: Connection) -> Alert:
            row = conn.execute(
                select(db.alerts).where(db.alerts.c.id == as_int("alert id", alert_id))
            ).first()
            if row is None:
                raise NotFound(
                    f"alert {alert_id} not found", hint="list them: triptych monitor alerts"
                )
            return _alert(row)

        result: Alert = self._read(read)
        return result

    def list_alerts(
        self,
        *,
        monitor: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        a = db.alerts
        query = select(a).order_by(a.c.last_seen.desc(), a.c.id.desc())
        if monitor is not None:
            query = query.where(a.c.monitor == monitor)
        if status is not None:
            query = query.where(a.c.status == validate_status(status))
        if limit is not None:
            query = query.limit(max(1, int(limit)))

        def read(conn: Connection) -> list[Alert]:
            return [_alert(r) for r in conn.execute(query).all()]

        result: list[Alert] = self._read(read)
        return result

    def set_alert_status(self, alert_id: int, status: str, *, actor: str | None = None) -> Alert:
        validate_status(status, ("acknowledged", "resolved"))
        a = db.alerts

        def write(conn: Connection) -> Alert:
            row = conn.execute(
                select(a).where(a.c.id == as_int("alert id", alert_id)).with_for_update()
            ).first()
            if row is None:
                raise NotFound(
                    f"alert {alert_id} not found", hint="list them: triptych monitor alerts"
                )
            if row.status == status:
                return _alert(row)
            if row.status == "resolved":
                raise Conflict(
                    f"alert {alert_id} is resolved: it cannot be acknowledged",
                    hint="a new breach raises a new alert",
                )
            at = now_ms()
            if status == "acknowledged":
                values = {"status": status, "acknowledged_by": actor, "acknowledged_at": at}
            else:
                values = {"status": status, "resolved_by": actor, "resolved_at": at,
                          "active_key": None}  # fmt: skip
            conn.execute(update(a).where(a.c.id == row.id).values(**values))
            return _alert(conn.execute(select(a).where(a.c.id == row.id)).one())

        result: Alert = self._write(write)
        return result
