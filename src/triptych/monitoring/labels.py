"""Delayed labels: ground truth that arrives after the prediction, joined by request id.

Labels are volume data, like the prediction log: Parquet files logged as artifacts of one
*labels run* per deployment (experiment ``monitoring``, tag ``triptych.monitoring.labels`` =
the deployment), at ``labels/part-<received ms>-<random>.parquet``, never rows in the metadata
database. Files are only ever added; each row carries the time it was received, so a changed
label for a request id is a *correction* and the latest one wins, and the history stays.

Uploading is idempotent: a row whose (request id, label) is already the latest label of that
id adds nothing, so re-sending a file (a retried job) writes no new file at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound
from triptych.serving import ids

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from triptych.tracking.client import Client

LABELS_TAG = "triptych.monitoring.labels"
PREFIX = "labels"
COLUMNS = ("request_id", "label")
MAX_LISTED = 20  # ids kept in a report's lists; the counts are always complete
SCORED_VARIANTS = ("primary", "canary")  # shadow answers never reach the user: not judged


@dataclass
class LabelReport:
    """What one :func:`add` did. Lists hold at most ``MAX_LISTED`` examples each."""

    deployment: str
    run_id: str | None = None
    received: int = 0  # rows given
    stored: int = 0  # rows written now (new ids + corrections)
    new: int = 0
    corrections: int = 0  # ids whose latest label changed
    unchanged: int = 0  # already stored with the same label (idempotent re-upload)
    duplicates: int = 0  # rows superseded by a later row with the same id in the same input
    unmatched: int = 0  # stored ids with no logged prediction of the deployment (yet)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (row number, why)
    invalid_count: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    unmatched_ids: list[str] = field(default_factory=list)
    file: str | None = None  # the artifact written, None when nothing was new

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# -- reading the input -----------------------------------------------------------------------
def _frame(labels: Any) -> pandas.DataFrame:
    """``labels`` as a DataFrame with the two columns; InvalidInput with the fix otherwise."""
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        frame = labels
    elif isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        if not path.is_file():
            raise NotFound(f"no labels file at {path}", hint="give a CSV or Parquet file")
        name = path.name.lower()
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            sep = "\t" if ".tsv" in name else ","
            frame = pd.read_csv(path, sep=sep, dtype={"request_id": str})
        else:
            raise InvalidInput(
                f"cannot read labels from {path.name!r}",
                hint="give a .csv, .tsv or .parquet file with columns request_id,label",
            )
    elif isinstance(labels, Iterable):
        rows = list(labels)
        if not all(
            isinstance(r, Sequence) and not isinstance(r, str) and len(r) == 2 for r in rows
        ):
            raise InvalidInput(
                "labels given as a list must be (request_id, label) pairs",
                hint="e.g. [('0192f0c2...', 151.0), ...]",
            )
        frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    else:
        raise InvalidInput(
            f"cannot read labels from a {type(labels).__name__}",
            hint="give a DataFrame, a CSV/Parquet path or a list of (request_id, label) pairs",
        )
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:10])) or "none"
        raise InvalidInput(
            f"labels need columns request_id and label; missing {', '.join(missing)} "
            f"(found: {found})",
            hint="rename the columns, e.g. df.rename(columns={'id': 'request_id', "
            "'y': 'label'}), or the CSV header to request_id,label",
        )
    return frame


def _scalar(value: Any) -> Any:
    """A JSON-able label, or None when missing (None, NaN, empty text)."""
    import pandas as pd

    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if not isinstance(value, (list, dict, tuple)) and pd.isna(value):  # None, NaN, NaT, pd.NA
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, float) and math.isinf(value):
        return None  # not a measurement; JSON cannot hold it either
    return value


def _label_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(request_id: str, label_text: str) -> str:
    """What makes a stored label the same as an uploaded one."""
    return hashlib.sha256(f"{request_id}\0{label_text}".encode()).hexdigest()[:32]


def _schema() -> pyarrow.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("label", pa.string()),  # JSON text: numbers, class names, lists for batch requests
            ("digest", pa.string()),
            ("received_ms", pa.timestamp("ms", tz="UTC")),
        ]
    )


# -- the labels run --------------------------------------------------------------------------
def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()


def _check_deployment(deployment: str) -> str:
    if not isinstance(deployment, str) or not deployment.strip():
        raise InvalidInput("a deployment name is needed", hint="e.g. add('diabetes', 'labels.csv')")
    return deployment.strip()


def labels_run(
    deployment: str, *, client: Client | None = None, create: bool = False
) -> str | None:
    """The id of the deployment's labels run (oldest if several), created when asked."""
    from triptych.monitoring.runs import storage_run

    name = _check_deployment(deployment)
    return storage_run(LABELS_TAG, name, "labels", client=_client(client), create=create)


def read(
    deployment: str, *, history: bool = False, client: Client | None = None
) -> pandas.DataFrame:
    """The stored labels of ``deployment``: the latest per request id (``history=True``: every
    stored row, corrections included), with ``label`` decoded from JSON."""
    c = _client(client)
    run_id = labels_run(deployment, client=c)
    frame = _stored(c, run_id).to_pandas()
    if not history and len(frame):
        frame = frame.drop_duplicates("request_id", keep="last").reset_index(drop=True)
    frame["label"] = [json.loads(v) for v in frame["label"]]
    return frame


def _stored(c: Client, run_id: str | None) -> pyarrow.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if run_id is None:
        return _schema().empty_table()
    # File names start with the receive time: reading them in name order, then a stable sort
    # by receive time, keeps the upload order.
    paths = sorted(
        e.path for e in c.store.walk_artifacts(run_id, PREFIX) if e.path.endswith(".parquet")
    )
    tables = [
        pq.read_table(io.BytesIO(c.read_artifact(run_id, p)), schema=_schema()) for p in paths
    ]
    return pa.concat_tables(tables) if tables else _schema().empty_table()


# -- adding ----------------------------------------------------------------------------------
def add(
    deployment: str,
    labels: Any,
    *,
    skip_invalid: bool = False,
    client: Client | None = None,
) -> LabelReport:
    """Store ground-truth labels for predictions of ``deployment``.

    ``labels``: a DataFrame or CSV/Parquet path with columns ``request_id`` and ``label``, or a
    list of ``(request_id, label)`` pairs. Rows with a bad request id or a missing label are
    refused: the whole upload fails with InvalidInput naming them (nothing is written) unless
    ``skip_invalid`` is set, which stores the good rows and lists the bad ones in the report.
    Within one input, the last row for a request id wins (the others are counted as
    duplicates). Ids with no logged prediction are kept (the log may not be flushed yet) and
    reported as unmatched.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = _client(client)
    name = _check_deployment(deployment)
    frame = _frame(labels)
    report = LabelReport(deployment=name, received=len(frame))

    latest: dict[str, tuple[str, int]] = {}  # request id -> (label text, input row)
    for i, (raw_id, raw_label) in enumerate(
        zip(frame["request_id"].tolist(), frame["label"].tolist(), strict=True)
    ):
        row = i + 1
        try:
            rid = ids.normalise(raw_id if isinstance(raw_id, str) else _scalar(raw_id))
        except InvalidInput:
            _invalid(report, row, f"{str(raw_id)[:40]!r} is not a request id")
            continue
        value = _scalar(raw_label)
        if value is None:
            _invalid(report, row, f"request {rid} has no label")
            continue
        try:
            text = _label_text(value)
        except (TypeError, ValueError):
            _invalid(report, row, f"the label of request {rid} is not a number, text or list")
            continue
        if rid in latest:
            report.duplicates += 1
            if len(report.duplicate_ids) < MAX_LISTED and rid not in report.duplicate_ids:
                report.duplicate_ids.append(rid)
        latest[rid] = (text, row)

    if report.invalid_count and not skip_invalid:
        shown = "; ".join(f"row {r}: {why}" for r, why in report.invalid[:5])
        more = f" (and {report.invalid_count - 5} more)" if report.invalid_count > 5 else ""
        raise InvalidInput(
            f"{report.invalid_count} of {report.received} label rows are invalid, nothing was "
            f"stored: {shown}{more}",
            hint="fix or remove those rows, or pass skip_invalid=True to store the others",
        )

    run_id = labels_run(name, client=c, create=bool(latest))
    report.run_id = run_id
    stored, last_ms = _latest_digests(c, run_id)
    rows: list[tuple[str, str, str]] = []
    for rid, (text, _) in latest.items():
        d = digest(rid, text)
        if stored.get(rid) == d:
            report.unchanged += 1
            continue
        if rid in stored:
            report.corrections += 1
        else:
            report.new += 1
        rows.append((rid, text, d))

    if latest:
        _count_unmatched(c, name, list(latest), report)
    if not rows:
        return report
    # Never at or before the latest stored row, even with a clock step back: latest wins.
    now = max(int(time.time() * 1000), last_ms + 1)
    schema = _schema()
    columns = list(zip(*rows, strict=True))
    table = pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=False)]
        + [pa.array([now] * len(rows), type=schema.field("received_ms").type)],
        schema=schema,
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    path = f"{PREFIX}/part-{now:013d}-{os.urandom(4).hex()}.parquet"
    assert run_id is not None
    c.log_bytes(run_id, buffer.getvalue(), path)
    report.stored = len(rows)
    report.file = path
    return report


def _invalid(report: LabelReport, row: int, why: str) -> None:
    report.invalid_count += 1
    if len(report.invalid) < MAX_LISTED:
        report.invalid.append((row, why))


def _latest_digests(c: Client, run_id: str | None) -> tuple[dict[str, str], int]:
    """The latest label digest of every stored id, and the latest receive time (ms)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _stored(c, run_id)  # in upload order: the last digest of an id is its latest
    times = table.column("received_ms").cast(pa.int64())
    last = pc.max(times).as_py() if len(times) else None
    pairs = zip(
        table.column("request_id").to_pylist(), table.column("digest").to_pylist(), strict=True
    )
    return dict(pairs), int(last or 0)


def _count_unmatched(
    c: Client, deployment: str, request_ids: list[str], report: LabelReport
) -> None:
    """Ids with no logged (primary or canary) prediction of ``deployment``. Reads only the
    hours the ids' own times span (a UUIDv7 carries its time)."""
    from triptych.serving import predlog

    times = [ids.time_of(r) for r in request_ids]
    logged = predlog.read(
        start_ms=min(times), end_ms=max(times) + 1, deployment=deployment, client=c
    )
    known = set(logged.loc[logged["variant"].isin(SCORED_VARIANTS), "request_id"])
    missing = [r for r in request_ids if r not in known]
    report.unmatched = len(missing)
    report.unmatched_ids = missing[:MAX_LISTED]


# -- joining ---------------------------------------------------------------------------------
JOIN_COLUMNS = (
    "request_id",
    "row",
    "time_ms",
    "variant",
    "model_name",
    "model_version",
    "model_uri",
    "prediction",
    "label",
)


def join(
    deployment: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    client: Client | None = None,
) -> pandas.DataFrame:
    """Logged predictions of ``deployment`` (primary and canary, answered with 200) in
    ``[start_ms, end_ms)`` joined to their latest label, one row per predicted row.

    A request that scored one row takes a scalar label; a request that scored n rows takes a
    list of n labels (a scalar or a list of another length cannot be paired and the request is
    left out; ``frame.attrs["mismatched"]`` counts them). Predictions without a label are left
    out too (``frame.attrs["unlabelled"]``).
    """
    import pandas as pd

    from triptych.serving import predlog

    c = _client(client)
    name = _check_deployment(deployment)
    labels = read(name, client=c)
    logged = predlog.read(start_ms=start_ms, end_ms=end_ms, deployment=name, client=c)
    logged = logged[logged["variant"].isin(SCORED_VARIANTS) & (logged["status"] == 200)]
    merged = logged.merge(labels[["request_id", "label"]], on="request_id", how="left")
    records: list[tuple[Any, ...]] = []
    mismatched = unlabelled = 0
    for rec in merged.itertuples(index=False):
        label = rec.label
        outputs = rec.outputs if isinstance(rec.outputs, list) else [rec.outputs]
        if label is None or (isinstance(label, float) and math.isnan(label)):
            unlabelled += 1
            continue
        if isinstance(label, list) and len(label) == len(outputs) and len(outputs) != 1:
            pairs = list(zip(outputs, label, strict=True))
        elif len(outputs) == 1:
            pairs = [(outputs[0], label)]
        else:
            mismatched += 1
            continue
        version = None if pd.isna(rec.model_version) else int(rec.model_version)
        for row, (prediction, truth) in enumerate(pairs):
            records.append(
                (
                    rec.request_id,
                    row,
                    int(pd.Timestamp(rec.time_ms).value // 1_000_000),
                    rec.variant,
                    rec.model_name,
                    version,
                    rec.model_uri,
                    prediction,
                    truth,
                )
            )
    frame = pd.DataFrame.from_records(records, columns=list(JOIN_COLUMNS))
    frame["model_version"] = frame["model_version"].astype("Int64")
    frame.attrs["mismatched"] = mismatched
    frame.attrs["unlabelled"] = unlabelled
    return frame


__all__ = ["LabelReport", "add", "join", "labels_run", "read"]
