"""Reading runs: the columns search and get select, and turning rows into :class:`Run`s."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from triptych.store.entities import CodeState, DataInput, Fingerprint, Lifecycle, Run, RunStatus
from triptych.store.sql import schema as db

ATTRIBUTE_COLUMNS = {
    "status": db.runs.c.status,
    "name": db.runs.c.name,
    "run_id": db.runs.c.uuid,
    "user": db.runs.c.user,
    "fingerprint": db.runs.c.fingerprint,
    "lifecycle": db.runs.c.lifecycle,
    "start_time": db.runs.c.start_time,
    "end_time": db.runs.c.end_time,
}
_BULK_CHUNK = 500  # ids per IN (...) list
_NAN = float("nan")
_STATUS = {s.value: s for s in RunStatus}
_LIFECYCLE = {s.value: s for s in Lifecycle}
# The columns load_runs unpacks, in this order.
RUN_COLUMNS = tuple(
    db.runs.c[name]
    for name in (
        "id", "uuid", "experiment_id", "name", "status", "lifecycle", "user", "start_time",
        "end_time", "heartbeat_time", "parent_id",
        "code_commit", "code_branch", "code_remote", "entry_point", "code_diff_digest",
        "code_digest", "env_digest", "data_digest", "fingerprint",
    )
)  # fmt: skip
_PARENT = 10
_FINGERPRINT = 19


def load_runs(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Runs for ``rows`` (selected as :data:`RUN_COLUMNS`), everything attached, in order.

    The hot path of search: one query per attached table over the page's ids (integers
    from the database, so rendered inline rather than as hundreds of bind parameters),
    rows unpacked by position."""
    rows = [tuple(r) for r in rows]  # plain tuples index several times faster than Rows
    pks = [r[0] for r in rows]
    param_map: dict[int, dict[str, str]] = defaultdict(dict)
    tag_map: dict[int, dict[str, str]] = defaultdict(dict)
    metric_map: dict[int, dict[str, float]] = defaultdict(dict)
    input_map: dict[int, list[DataInput]] = defaultdict(list)
    parent_map: dict[int, str] = {}
    sql = conn.exec_driver_sql
    for chunk in _chunks(pks):
        ids = ",".join(str(int(pk)) for pk in chunk)
        for kind, pk, k, v in sql(
            f"SELECT 0, run_id, key, value FROM params WHERE run_id IN ({ids}) UNION ALL "
            f"SELECT 1, run_id, key, value FROM tags WHERE run_id IN ({ids})"
        ).all():
            (tag_map if kind else param_map)[pk][k] = v
        for pk, k, v, nan in sql(
            f"SELECT run_id, key, value, is_nan FROM latest_metrics WHERE run_id IN ({ids})"
        ).all():
            metric_map[pk][k] = _NAN if nan else v
        for pk, name, digest, n, schema, source in sql(
            "SELECT run_id, name, digest, rows, schema, source FROM run_inputs "
            f"WHERE run_id IN ({ids})"
        ).all():
            input_map[pk].append(
                DataInput(name, digest, n, json.loads(schema) if schema else None, source)
            )
    parent_pks = sorted({r[_PARENT] for r in rows if r[_PARENT] is not None})
    for chunk in _chunks(parent_pks):
        ids = ",".join(str(int(pk)) for pk in chunk)
        parent_map.update(sql(f"SELECT id, uuid FROM runs WHERE id IN ({ids})").all())
    out = []
    fingerprints: dict[tuple[Any, ...], Fingerprint] = {}  # runs of a page share most
    for r in rows:
        (pk, uuid_, exp, name, status, lifecycle, user, start, end, beat, parent) = r[:11]
        fingerprint = None
        if r[_FINGERPRINT]:
            key = r[11:]
            fingerprint = fingerprints.get(key)
            if fingerprint is None:
                commit, branch, remote, entry, diff = r[11:16]
                code = CodeState(commit, branch, remote, entry, diff, r[16] or "")
                fingerprint = Fingerprint(code, r[17] or "", r[18] or "", r[_FINGERPRINT])
                fingerprints[key] = fingerprint
        inputs = input_map.get(pk)
        out.append(
            Run(
                run_id=uuid_,
                experiment_id=str(exp),
                name=name,
                status=_STATUS[status],
                lifecycle=_LIFECYCLE[lifecycle],
                start_time=start,
                end_time=end,
                heartbeat_time=beat,
                user=user,
                parent_run_id=parent_map.get(parent) if parent else None,
                params=param_map.get(pk, {}),
                metrics=metric_map.get(pk, {}),
                tags=tag_map.get(pk, {}),
                inputs=tuple(sorted(inputs, key=lambda i: (i.name, i.digest))) if inputs else (),
                fingerprint=fingerprint,
            )
        )
    return out


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), _BULK_CHUNK):
        yield items[i : i + _BULK_CHUNK]
