"""The SQLAlchemy 2 metadata store: SQLite (embedded default) and PostgreSQL, chosen by URL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.store import base
from triptych.store.base import MetadataStore, now_ms
from triptych.store.entities import (
    CodeState,
    Fingerprint,
    Lifecycle,
    Metric,
    Page,
    Run,
    RunSpec,
    RunStatus,
)
from triptych.store.search import parse_filter, parse_order_by
from triptych.store.sql import migrate
from triptych.store.sql import schema as db
from triptych.store.sql.approvals import SqlApprovals
from triptych.store.sql.auth import SqlAuth
from triptych.store.sql.datasets import SqlDatasets
from triptych.store.sql.deployments import SqlDeployments
from triptych.store.sql.engine import WRITE, build_engine, with_retry
from triptych.store.sql.experiments import SqlExperiments
from triptych.store.sql.models import SqlModels
from triptych.store.sql.monitoring import SqlMonitoring
from triptych.store.sql.provenance import SqlProvenance
from triptych.store.sql.registered_models import SqlRegisteredModels
from triptych.store.sql.rows import RUN_COLUMNS, load_runs
from triptych.store.sql.schedules import SqlSchedules
from triptych.store.sql.search import decode_token, encode_token, search_statement, shape
from triptych.store.sql.tree import SqlArtifacts
from triptych.uris import redact

T = TypeVar("T")


class SqlStore(
    SqlApprovals,
    SqlArtifacts,
    SqlAuth,
    SqlDatasets,
    SqlDeployments,
    SqlExperiments,
    SqlModels,
    SqlMonitoring,
    SqlProvenance,
    SqlRegisteredModels,
    SqlSchedules,
    MetadataStore,
):
    """One implementation for every SQLAlchemy URL; see :class:`MetadataStore` for semantics."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self.url = url
        self._engine = build_engine(url)
        self._dialect = self._engine.dialect.name
        self._statements: dict[tuple[str, str, Any], Any] = {}
        if migrate_schema:
            try:
                with_retry(lambda: migrate.upgrade(self._engine), "schema migration")
            except BaseException:
                self._engine.dispose()  # no connection outlives a store that failed to open
                raise

    def __repr__(self) -> str:
        return f"SqlStore({redact(self.url)!r})"

    def close(self) -> None:
        self._engine.dispose()

    # -- plumbing ---------------------------------------------------------------------------
    def _read(self, fn: Callable[[Connection], T]) -> T:
        def attempt() -> T:
            with self._engine.connect() as conn, conn.begin():
                return fn(conn)

        return with_retry(attempt, "read")

    def _write(self, fn: Callable[[Connection], T]) -> T:
        def attempt() -> T:
            with self._engine.connect() as conn:
                conn.execution_options(**{WRITE: True})
                with conn.begin():
                    return fn(conn)

        return with_retry(attempt, "write")

    def _write_racing(self, fn: Callable[[Connection], T], attempts: int = 20) -> T:
        """Write, retrying when a concurrent writer inserted the same unique row first (e.g.
        two processes creating one new dataset): the retry then finds that row."""
        for attempt in range(attempts):
            try:
                return self._write(fn)
            except SAIntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _dialect_insert(self, table: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT support (SQLite and PostgreSQL share it)."""
        if self._dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    def _insert_ignore(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        """Insert rows whose primary key is new; existing rows are left as they are."""
        if not rows:
            return
        rows = _in_key_order(table, rows)
        key = ("ignore", table.name, None)
        stmt = self._statements.get(key)
        if stmt is None:
            pk = [c.name for c in table.primary_key.columns]
            stmt = self._dialect_insert(table).on_conflict_do_nothing(index_elements=pk)
            self._statements[key] = stmt
        conn.execute(stmt, rows)

    def _upsert_values(
        self, conn: Connection, table: Any, rows: list[dict[str, Any]], where: Any = None
    ) -> None:
        """Insert rows, replacing non-key columns of existing rows (optionally only ``where``).

        Statements are built once per store: building them costs more than running them."""
        if not rows:
            return
        rows = _in_key_order(table, rows)
        key = ("upsert", table.name, where)
        stmt = self._statements.get(key)
        if stmt is None:
            pk = [c.name for c in table.primary_key.columns]
            stmt = self._dialect_insert(table)
            values = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
            stmt = stmt.on_conflict_do_update(
                index_elements=pk, set_=values, where=where(stmt) if where else None
            )
            self._statements[key] = stmt
        conn.execute(stmt, rows)

    @staticmethod
    def _experiment_pk(experiment_id: str) -> int:
        try:
            pk = int(experiment_id)
        except (TypeError, ValueError):
            pk = -1
        if not 0 <= pk < 2**63:  # ids are positive 64-bit integers; anything else is no id
            raise NotFound(f"experiment {experiment_id!r} not found")
        return pk

    def _run_pk(self, conn: Connection, run_id: str) -> tuple[int, str]:
        row = conn.execute(
            select(db.runs.c.id, db.runs.c.status).where(db.runs.c.uuid == run_id)
        ).first()
        if row is None:
            raise NotFound(f"run {run_id!r} not found", hint="list runs with: triptych runs list")
        return row[0], row[1]

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, spec: RunSpec) -> Run:
        exp_pk = self._experiment_pk(spec.experiment_id)
        tag_rows = base.validate_tags(spec.tags)
        param_rows = base.validate_params(spec.params)
        run_id = spec.run_id or uuid.uuid4().hex
        if len(run_id) > 32 or not run_id.isalnum():
            raise InvalidInput(f"invalid run id {run_id!r}: at most 32 letters and digits")
        name = spec.name or run_id[:8]
        base.validate_name("run", name)
        start = spec.start_time or now_ms()
        code = spec.code or CodeState()
        paths = {a.path for a in spec.artifacts}
        for a in spec.artifacts:
            if not a.path or a.digest is None or a.size is None:
                raise InvalidInput(f"artifact entry {a!r} needs a path, a digest and a size")
            if any(p.startswith(a.path + "/") for p in paths):
                raise Conflict(f"artifact path {a.path!r} is both a file and a folder")

        def write(conn: Connection) -> str | None:
            exp = conn.execute(
                select(db.experiments.c.lifecycle).where(db.experiments.c.id == exp_pk)
            ).first()
            if exp is None:
                raise NotFound(f"experiment {spec.experiment_id!r} not found")
            if exp[0] != Lifecycle.ACTIVE.value:
                raise Conflict(
                    f"experiment {spec.experiment_id!r} is deleted",
                    hint="restore it first, or log to another experiment",
                )
            parent_pk = None
            if spec.parent_run_id:
                parent_pk, _ = self._run_pk(conn, spec.parent_run_id)
            if spec.env_digest is not None:
                self._check_environment(conn, spec.env_digest)
            pk = conn.execute(
                insert(db.runs).values(
                    uuid=run_id,
                    experiment_id=exp_pk,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    lifecycle=Lifecycle.ACTIVE.value,
                    user=spec.user,
                    start_time=start,
                    heartbeat_time=start,
                    heartbeat_timeout=spec.heartbeat_timeout,
                    parent_id=parent_pk,
                    code_commit=code.commit,
                    code_branch=code.branch,
                    code_remote=code.remote,
                    entry_point=code.entry_point,
                    code_diff_digest=code.diff_digest,
                    code_digest=code.digest or None,
                    env_digest=spec.env_digest,
                    fingerprint=spec.fingerprint,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(db.tags),
                    [{"run_id": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            if param_rows:
                conn.execute(
                    insert(db.params),
                    [{"run_id": pk, "key": k, "value": v} for k, v in param_rows.items()],
                )
            if spec.artifacts:
                conn.execute(
                    insert(db.artifacts),
                    [
                        {"run_id": pk, "path": a.path, "digest": a.digest, "size": a.size,
                         "creation_time": start}
                        for a in spec.artifacts
                    ],
                )  # fmt: skip
            return None

        try:
            self._write(write)
        except SAIntegrityError as e:
            raise Conflict(
                f"run {run_id!r} already exists or violates a constraint: {e.orig}"
            ) from e
        fingerprint = None
        if spec.fingerprint:
            fingerprint = Fingerprint(code, spec.env_digest or "", "", spec.fingerprint)
        return Run(
            run_id=run_id,
            experiment_id=str(exp_pk),
            name=name,
            status=RunStatus.RUNNING,
            lifecycle=Lifecycle.ACTIVE,
            start_time=start,
            end_time=None,
            heartbeat_time=start,
            user=spec.user,
            parent_run_id=spec.parent_run_id,
            params=param_rows,
            tags=tag_rows,
            fingerprint=fingerprint,
        )

    def get_run(self, run_id: str) -> Run:
        def read(conn: Connection) -> Run:
            row = conn.execute(select(*RUN_COLUMNS).where(db.runs.c.uuid == run_id)).first()
            if row is None:
                raise NotFound(
                    f"run {run_id!r} not found", hint="list runs with: triptych runs list"
                )
            return load_runs(conn, [row])[0]

        return self._read(read)

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        data_digest: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            status = RunStatus(status)
            values["status"] = status.value
            if status.terminal:
                values["end_time"] = end_time or now_ms()
            else:
                values["end_time"] = None
        elif end_time is not None:
            values["end_time"] = end_time
        if name is not None:
            values["name"] = base.validate_name("run", name)
        if data_digest is not None:
            values["data_digest"] = data_digest
        if fingerprint is not None:
            values["fingerprint"] = fingerprint
        if not values:
            self.get_run(run_id)  # still raise NotFound for a missing run
            return

        def write(conn: Connection) -> None:
            done = conn.execute(update(db.runs).where(db.runs.c.uuid == run_id).values(**values))
            if done.rowcount == 0:
                raise NotFound(f"run {run_id!r} not found")

        self._write(write)

    def heartbeat(self, run_ids: Sequence[str], at: int | None = None) -> None:
        if not run_ids:
            return
        when = at or now_ms()

        def write(conn: Connection) -> None:
            conn.execute(
                update(db.runs)
                .where(
                    db.runs.c.uuid.in_(list(run_ids)), db.runs.c.status == RunStatus.RUNNING.value
                )
                .values(heartbeat_time=when)
            )

        self._write(write)

    def fail_stale_runs(self, at: int | None = None) -> list[str]:
        when = at or now_ms()
        stale = and_(
            db.runs.c.status == RunStatus.RUNNING.value,
            db.runs.c.heartbeat_time + db.runs.c.heartbeat_timeout * 1000 < when,
        )
        # A cheap read first: most calls find nothing and never take the write lock.
        if not self._read(lambda c: c.execute(select(db.runs.c.id).where(stale).limit(1)).first()):
            return []

        def write(conn: Connection) -> list[str]:
            found = conn.execute(
                select(db.runs.c.id, db.runs.c.uuid, db.runs.c.heartbeat_time).where(stale)
            )
            found_rows = found.all()
            if not found_rows:
                return []
            conn.execute(
                update(db.runs)
                .where(db.runs.c.id.in_([r.id for r in found_rows]), stale)
                .values(status=RunStatus.FAILED.value, end_time=db.runs.c.heartbeat_time)
            )
            self._upsert_values(
                conn,
                db.tags,
                [
                    {
                        "run_id": r.id,
                        "key": "triptych.status_reason",
                        "value": "no heartbeat: the process that ran it died or hung",
                    }
                    for r in found_rows
                ],
            )
            return [r.uuid for r in found_rows]

        return self._write(write)

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        state = Lifecycle.DELETED if deleted else Lifecycle.ACTIVE

        def write(conn: Connection) -> None:
            done = conn.execute(
                update(db.runs).where(db.runs.c.uuid == run_id).values(lifecycle=state.value)
            )
            if done.rowcount == 0:
                raise NotFound(f"run {run_id!r} not found")

        self._write(write)

    def delete_run_tag(self, run_id: str, key: str) -> None:
        def write(conn: Connection) -> None:
            pk, _ = self._run_pk(conn, run_id)
            done = conn.execute(delete(db.tags).where(db.tags.c.run_id == pk, db.tags.c.key == key))
            if done.rowcount == 0:
                raise NotFound(f"run {run_id!r} has no tag {key!r}")

        self._write(write)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        batch = _checked_batch(metrics, params, tags)
        if not any(batch):
            self.get_run(run_id)
            return
        self._write(lambda conn: self._write_batch(conn, run_id, *batch))

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """One transaction for the last batch and the final status (the run end's cost)."""
        batch = _checked_batch(metrics, params, tags)
        status = RunStatus(status)
        values = {
            "status": status.value,
            "end_time": (end_time or now_ms()) if status.terminal else None,
        }

        def write(conn: Connection) -> None:
            pk = self._write_batch(conn, run_id, *batch)
            conn.execute(update(db.runs).where(db.runs.c.id == pk).values(**values))

        self._write(write)

    def _write_batch(
        self,
        conn: Connection,
        run_id: str,
        checked: list[Metric],
        param_rows: dict[str, str],
        tag_rows: dict[str, str],
    ) -> int:
        pk, _ = self._run_pk(conn, run_id)
        if param_rows:
            self._write_params(conn, pk, run_id, param_rows)
        if tag_rows:
            rows = [{"run_id": pk, "key": k, "value": v} for k, v in tag_rows.items()]
            self._upsert_values(conn, db.tags, rows)
        if checked:
            self._write_metrics(conn, pk, checked)
        return pk

    def _write_params(
        self, conn: Connection, pk: int, run_id: str, values: Mapping[str, str]
    ) -> None:
        existing = dict(
            conn.execute(
                select(db.params.c.key, db.params.c.value).where(
                    db.params.c.run_id == pk, db.params.c.key.in_(list(values))
                )
            ).all()
        )
        changed = {
            k: (existing[k], v) for k, v in values.items() if k in existing and existing[k] != v
        }
        if changed:
            key, (old, new) = next(iter(changed.items()))
            raise Conflict(
                f"param {key!r} of run {run_id} is already {old!r}; cannot change it to {new!r}",
                hint="params are immutable: start a new run, or use a metric or tag",
            )
        self._insert_ignore(
            conn,
            db.params,
            [{"run_id": pk, "key": k, "value": v} for k, v in values.items() if k not in existing],
        )

    def _write_metrics(self, conn: Connection, pk: int, checked: list[Metric]) -> None:
        rows: list[dict[str, Any]] = [
            {
                "run_id": pk,
                "key": m.key,
                "value": 0.0 if m.value != m.value else m.value,
                "is_nan": m.value != m.value,
                "step": m.step,
                "timestamp": m.timestamp,
            }
            for m in checked
        ]
        conn.execute(insert(db.metrics), rows)
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            best = latest.get(row["key"])
            if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
                latest[row["key"]] = row

        self._upsert_values(conn, db.latest_metrics, list(latest.values()), where=_newer)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        def read(conn: Connection) -> list[Metric]:
            pk, _ = self._run_pk(conn, run_id)
            result = conn.execute(
                select(
                    db.metrics.c.value,
                    db.metrics.c.is_nan,
                    db.metrics.c.step,
                    db.metrics.c.timestamp,
                )
                .where(db.metrics.c.run_id == pk, db.metrics.c.key == key)
                .order_by(db.metrics.c.step, db.metrics.c.timestamp, db.metrics.c.id)
            )
            return [
                Metric(key, float("nan") if nan else v, step, ts) for v, nan, step, ts in result
            ]

        return self._read(read)

    # -- search -----------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        if not 1 <= max_results <= base.MAX_RESULTS:
            raise InvalidInput(f"max_results must be between 1 and {base.MAX_RESULTS}")
        comparisons = parse_filter(filter_string)
        orders = parse_order_by(list(order_by))
        offset = decode_token(page_token)
        exp_pks = []
        for e in experiment_ids:
            try:
                exp_pks.append(int(e))
            except (TypeError, ValueError):
                continue  # an id that cannot exist matches nothing
        query = search_statement(shape(comparisons), tuple(orders), include_deleted)
        values: dict[str, Any] = {"exp_ids": exp_pks, "offset": offset, "limit": max_results + 1}
        for i, c in enumerate(comparisons):
            value = c.value
            if c.entity == "attribute" and c.key == "status":  # statuses are upper case
                value = tuple(v.upper() for v in value) if isinstance(value, tuple) else value
                value = value.upper() if isinstance(value, str) else value
            values[f"v{i}"] = list(value) if isinstance(value, tuple) else value

        def read(conn: Connection) -> Page[Run]:
            rows = conn.execute(query, values).all()
            more = len(rows) > max_results
            found = load_runs(conn, rows[:max_results])
            token = encode_token(offset + max_results) if more else None
            return Page(found, token)

        return self._read(read)


# -- helpers ------------------------------------------------------------------------------------
def _checked_batch(
    metrics: Sequence[Metric], params: Mapping[str, str] | None, tags: Mapping[str, str] | None
) -> tuple[list[Metric], dict[str, str], dict[str, str]]:
    """Validate everything before anything is written: a bad batch writes nothing."""
    checked = [base.validate_metric(m) for m in metrics]
    param_rows = base.validate_params(params)
    tag_rows = base.validate_tags(tags)
    return checked, param_rows, tag_rows


def _in_key_order(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` sorted by primary key: concurrent upserts of overlapping rows then lock them in
    one order, so that two batches never each hold a row the other waits for (a deadlock on
    PostgreSQL, found by the soak: clients logging one run's keys in different orders)."""
    pk = [c.name for c in table.primary_key.columns]
    return sorted(rows, key=lambda row: tuple(row[c] for c in pk))


def _newer(stmt: Any) -> ColumnElement[bool]:
    """Latest-metric rule: a higher step wins; on the same step, the later timestamp."""
    ex = stmt.excluded
    return or_(
        db.latest_metrics.c.step < ex.step,
        and_(db.latest_metrics.c.step == ex.step, db.latest_metrics.c.timestamp <= ex.timestamp),
    )
