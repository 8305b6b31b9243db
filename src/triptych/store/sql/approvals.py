"""Alias approvals of the model registry (mixed into :class:`SqlStore`): which aliases need
an approval to move, and the requests to move them. An approved request moves the alias in
the same transaction as its decision, with the audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from triptych.errors import Conflict, NotFound, PermissionDenied
from triptych.store import base
from triptych.store.base import as_int, now_ms
from triptych.store.entities import AliasRequest
from triptych.store.sql import schema as db


class SqlApprovals:
    """Alias policies and alias requests."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _upsert_values: Callable[..., None]
    _model_row: Callable[..., Any]
    _model_version_row: Callable[..., Any]
    _event: Callable[..., None]

    def set_alias_policy(
        self, name: str, alias: str, require_approval: bool, *, user: str | None = None
    ) -> None:
        base.validate_alias(alias)

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            self._upsert_values(
                conn,
                db.alias_policies,
                [
                    {
                        "model_id": model.id,
                        "alias": alias,
                        "require_approval": bool(require_approval),
                    }
                ],
            )
            self._event(
                conn, name, "policy", alias=alias, user=user,
                details={"require_approval": bool(require_approval)},
            )  # fmt: skip

        self._write(write)

    def alias_requires_approval(self, name: str, alias: str) -> bool:
        def read(conn: Connection) -> bool:
            model = self._model_row(conn, name)
            value = conn.execute(
                select(db.alias_policies.c.require_approval).where(
                    db.alias_policies.c.model_id == model.id, db.alias_policies.c.alias == alias
                )
            ).scalar()
            return bool(value)

        result: bool = self._read(read)
        return result

    def _request(self, conn: Connection, row: Any) -> AliasRequest:
        name = conn.execute(
            select(db.registered_models.c.name).where(db.registered_models.c.id == row.model_id)
        ).scalar_one()
        return AliasRequest(
            request_id=row.id,
            name=name,
            alias=row.alias,
            version=row.version,
            requester=row.requester,
            reason=row.reason,
            status=row.status,
            decided_by=row.decided_by,
            decision_reason=row.decision_reason,
            creation_time=row.creation_time,
            decision_time=row.decision_time,
        )

    def create_alias_request(
        self, name: str, alias: str, version: int, *, user: str | None, reason: str | None = None
    ) -> AliasRequest:
        base.validate_alias(alias)

        def write(conn: Connection) -> AliasRequest:
            model = self._model_row(conn, name)
            self._model_version_row(conn, model, version)
            rid = conn.execute(
                insert(db.alias_requests).values(
                    model_id=model.id,
                    alias=alias,
                    version=as_int("version", version),
                    requester=user,
                    reason=reason,
                    status="pending",
                    creation_time=now_ms(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._event(
                conn, name, "request", version=as_int("version", version), alias=alias, user=user,
                reason=reason, details={"request_id": rid},
            )  # fmt: skip
            row = conn.execute(select(db.alias_requests).where(db.alias_requests.c.id == rid)).one()
            return self._request(conn, row)

        result: AliasRequest = self._write(write)
        return result

    def decide_alias_request(
        self, request_id: int, approve: bool, *, user: str | None, reason: str | None = None
    ) -> AliasRequest:
        def write(conn: Connection) -> AliasRequest:
            row = conn.execute(
                select(db.alias_requests).where(
                    db.alias_requests.c.id == as_int("request id", request_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"alias request {request_id} not found")
            if row.status != "pending":
                raise Conflict(f"alias request {request_id} is already {row.status}")
            if not user:
                raise PermissionDenied("deciding a request needs a known user")
            if approve and user == row.requester:
                raise PermissionDenied(
                    f"{user} asked for this move and cannot approve it",
                    hint="another person must approve it",
                )
            status = "approved" if approve else "rejected"
            conn.execute(
                update(db.alias_requests)
                .where(db.alias_requests.c.id == row.id)
                .values(
                    status=status, decided_by=user, decision_reason=reason, decision_time=now_ms()
                )
            )
            request = self._request(conn, row)
            if approve:
                previous = conn.execute(
                    select(db.model_aliases.c.version).where(
                        db.model_aliases.c.model_id == row.model_id,
                        db.model_aliases.c.alias == row.alias,
                    )
                ).scalar()
                self._upsert_values(
                    conn,
                    db.model_aliases,
                    [{"model_id": row.model_id, "alias": row.alias, "version": row.version}],
                )
                self._event(
                    conn, request.name, "alias", version=row.version, alias=row.alias,
                    previous=previous, user=user, reason=reason,
                    details={"request_id": row.id, "requested_by": row.requester},
                )  # fmt: skip
            else:
                self._event(
                    conn, request.name, "reject", version=row.version, alias=row.alias,
                    user=user, reason=reason, details={"request_id": row.id},
                )  # fmt: skip
            updated = conn.execute(
                select(db.alias_requests).where(db.alias_requests.c.id == row.id)
            ).one()
            return self._request(conn, updated)

        result: AliasRequest = self._write(write)
        return result

    def list_alias_requests(self, name: str, status: str | None = None) -> list[AliasRequest]:
        def read(conn: Connection) -> list[AliasRequest]:
            model = self._model_row(conn, name)
            query = select(db.alias_requests).where(db.alias_requests.c.model_id == model.id)
            if status is not None:
                query = query.where(db.alias_requests.c.status == status)
            rows = conn.execute(query.order_by(db.alias_requests.c.id)).all()
            return [self._request(conn, r) for r in rows]

        result: list[AliasRequest] = self._read(read)
        return result
