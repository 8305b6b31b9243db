"""The prediction log: every served prediction, as Parquet files partitioned by hour.

Predictions are volume data, so they are not rows in the metadata database: they are Parquet
files logged as artifacts of the *serving run* (one tracking run per server process) at
``predictions/date=YYYY-MM-DD/hour=HH/part-<first request id>.parquet`` (UTC). A file never
spans two hours, so the request id alone (a UUIDv7 carries its time) says which folders can
hold a prediction.

:meth:`PredictionLog.record` is on the response path: it appends to a buffer under a lock and
returns; a daemon thread turns the buffer into files every ``flush_seconds`` or
``flush_rows``. Loss window: a process killed with SIGKILL loses at most that much; a normal
shutdown calls :meth:`PredictionLog.close`, which writes everything.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound
from triptych.serving import ids

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from triptych.store.entities import Run
    from triptych.tracking.client import Client

log = logging.getLogger(__name__)

SERVING_EXPERIMENT = "serving"
TARGET_TAG = "triptych.serving.target"
PID_TAG = "triptych.serving.pid"
PREFIX = "predictions"
HOUR_MS = 3_600_000
SLACK_MS = HOUR_MS  # how far a record's time may be from its run's start/end (clock, latency)
MAX_BUFFER_FACTOR = 20  # buffered rows beyond flush_rows * this are dropped (store down)
RETRIES = 5  # write cycles a serialised file is retried before it is counted as lost

COLUMNS = (
    "request_id",
    "time_ms",
    "deployment",
    "variant",
    "model_name",
    "model_version",
    "model_uri",
    "inputs",
    "outputs",
    "latency_ms",
    "status",
    "error",
)


@dataclass
class Prediction:
    """One answered request, as the prediction log stores it."""

    request_id: str
    time_ms: int
    deployment: str | None  # None when serving a model URI directly
    variant: str  # "primary" | "canary" | "shadow"
    model_name: str | None  # registry name, None for a runs:/ URI
    model_version: int | None
    model_uri: str  # the runs:/<run_id>/<path> actually used
    inputs: list[dict[str, Any]]  # the request's rows as records (JSON-able)
    outputs: list[Any]  # one prediction per row (JSON-able)
    latency_ms: float
    status: int  # HTTP status of the answer
    error: str | None = None


def _schema() -> pyarrow.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("time_ms", pa.timestamp("ms", tz="UTC")),
            ("deployment", pa.string()),
            ("variant", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.int64()),
            ("model_uri", pa.string()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("latency_ms", pa.float64()),
            ("status", pa.int32()),
            ("error", pa.string()),
        ]
    )


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, dates: what models and frames hand back besides JSON types."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _json(value: Any) -> str:
    """JSON text by orjson (this runs on the writer thread, beside the server's event loop:
    a third of the per-request cost with the standard library). NaN becomes null."""
    import orjson

    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _row(p: Prediction) -> tuple[Any, ...]:
    """The stored values of ``p``; raises on content that cannot be stored."""
    if not isinstance(p, Prediction):
        raise TypeError(f"expected a Prediction, got {type(p).__name__}")
    return (
        ids.normalise(p.request_id),
        _int(p.time_ms, 63),
        _opt(p.deployment),
        str(p.variant),
        _opt(p.model_name),
        None if p.model_version is None else _int(p.model_version, 63),
        str(p.model_uri),
        _json(p.inputs),
        _json(p.outputs),
        float(p.latency_ms),
        _int(p.status, 31),
        None if p.error is None else str(p.error)[:2000],
    )


def _int(value: Any, bits: int) -> int:
    number = int(value)
    if not -(1 << bits) <= number < 1 << bits:
        raise ValueError(f"{number} is out of range")
    return number


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def partition(time_ms: int) -> str:
    """The folder of the hour that holds ``time_ms``."""
    hour = datetime.fromtimestamp(time_ms // HOUR_MS * 3600, tz=timezone.utc)
    return f"{PREFIX}/date={hour:%Y-%m-%d}/hour={hour:%H}"


def _hour_of(path: str) -> int | None:
    """The hour (ms since the epoch) of a partition path, None when it is not one."""
    try:
        _, day, hour = path.split("/")[:3]
        when = datetime.strptime(f"{day[5:]} {hour[5:]}", "%Y-%m-%d %H")
    except ValueError:
        return None
    return int(when.replace(tzinfo=timezone.utc).timestamp()) * 1000


class PredictionLog:
    """Buffers predictions and writes them as Parquet artifacts of the serving run ``run_id``
    from a background thread."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        *,
        flush_rows: int = 5000,
        flush_seconds: float = 2.0,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_rows = max(1, int(flush_rows))
        self.flush_seconds = float(flush_seconds)
        self.written = 0  # predictions stored in files
        self.dropped = 0  # predictions refused (bad content, after close, buffer full) or lost
        self.files = 0
        self.last_error: str | None = None
        self._max = self.flush_rows * MAX_BUFFER_FACTOR
        self._buffer: deque[Prediction] = deque()
        self._retry: list[tuple[str, bytes, int, int]] = []  # path, bytes, rows, attempts
        self._cond = threading.Condition(threading.Lock())
        self._io = threading.Lock()  # one writer at a time: the thread or a flush() caller
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="triptych-predlog", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        return f"PredictionLog(run_id={self.run_id!r}, written={self.written})"

    # -- the response path ------------------------------------------------------------------
    def record(self, p: Prediction) -> None:
        """Queue ``p``; returns at once, never raises, never does I/O."""
        try:
            with self._cond:
                if self._closed or len(self._buffer) >= self._max:
                    self._drop(1, "the log is closed" if self._closed else "the buffer is full")
                    return
                self._buffer.append(p)
                if len(self._buffer) >= self.flush_rows:
                    self._cond.notify()
        except Exception:  # pragma: no cover - nothing above raises; the caller must not fail
            self.dropped += 1

    def _drop(self, n: int, why: str) -> None:
        first = self.dropped == 0
        self.dropped += n
        if first or self.dropped % 1000 < n:
            log.warning("prediction log of run %s dropped %d so far: %s", self.run_id, n, why)

    # -- writing ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._buffer) < self.flush_rows:
                    self._cond.wait(self.flush_seconds)
                closed = self._closed
            try:
                self._write()
            except Exception:  # a bug must not stop the log: the next cycle tries again
                log.exception("prediction log of run %s: write cycle failed", self.run_id)
            if closed:
                return

    def flush(self) -> None:
        """Write what is buffered now, in the caller's thread (blocking)."""
        self._write()

    def close(self) -> None:
        """Write everything and stop the background thread; later records are dropped."""
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify()
        if already:
            return
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        self._write()

    def _write(self) -> None:
        with self._io:
            with self._cond:
                batch = self._buffer
                self._buffer = deque()
            files = self._retry
            self._retry = []
            if batch:
                files.extend((path, data, rows, 0) for path, data, rows in self._serialise(batch))
            for path, data, rows, attempts in files:
                try:
                    self.client.log_bytes(self.run_id, data, path)
                except Exception as e:  # the store is down: keep the file for a later cycle
                    self.last_error = f"{type(e).__name__}: {e}"
                    if attempts + 1 >= RETRIES or self._closed:
                        log.error("prediction log lost %d predictions: %s", rows, e)
                        with self._cond:
                            self.dropped += rows
                    else:
                        log.warning("prediction log could not write %s (will retry): %s", path, e)
                        self._retry.append((path, data, rows, attempts + 1))
                else:
                    self.written += rows
                    self.files += 1

    def _serialise(self, batch: deque[Prediction]) -> Iterator[tuple[str, bytes, int]]:
        """One Parquet file per hour present in ``batch``; bad records are dropped, logged."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        hours: dict[int, list[tuple[Any, ...]]] = {}
        for p in batch:
            try:
                row = _row(p)
            except Exception as e:
                with self._cond:
                    self._drop(1, f"cannot store {getattr(p, 'request_id', p)!r}: {e}")
                continue
            hours.setdefault(row[1] // HOUR_MS, []).append(row)
        schema = _schema()
        for hour, rows in sorted(hours.items()):
            rows.sort(key=lambda r: (r[1], r[0]))
            try:
                columns = list(zip(*rows, strict=True))
                arrays = [
                    pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)
                ]
                buffer = io.BytesIO()
                pq.write_table(
                    pa.Table.from_arrays(arrays, schema=schema), buffer, compression="zstd"
                )
            except Exception as e:  # e.g. an integer out of range: lose the hour, not the log
                with self._cond:
                    self._drop(len(rows), f"cannot write {len(rows)} predictions: {e}")
                continue
            path = f"{partition(hour * HOUR_MS)}/part-{rows[0][0]}.parquet"
            yield path, buffer.getvalue(), len(rows)


def _close_at_exit(ref: weakref.ref[PredictionLog]) -> None:
    """Interpreter exit: a server that forgot close() still writes what it buffered."""
    predictions = ref()
    if predictions is not None:
        predictions.close()


# -- serving runs -----------------------------------------------------------------------------
def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()


def start_serving_run(target: str, *, client: Client | None = None) -> str:
    """Create the tracking run a server process logs its predictions to; returns its id."""
    c = _client(client)
    experiment = c.store.get_or_create_experiment(SERVING_EXPERIMENT)
    run = c.create_run(
        experiment.experiment_id,
        name=f"serve {target}",
        tags={TARGET_TAG: target, PID_TAG: str(os.getpid())},
    )
    return run.run_id


def serving_runs(
    start_ms: int | None = None, end_ms: int | None = None, *, client: Client | None = None
) -> list[Run]:
    """Serving runs that were alive at some time in ``[start_ms, end_ms]``, newest first."""
    c = _client(client)
    query = f"tags.`{TARGET_TAG}` LIKE '%'"
    if end_ms is not None:
        query += f" and start_time <= {int(end_ms) + SLACK_MS}"
    out: list[Run] = []
    token: str | None = None
    while True:
        page = c.search_runs(None, query, ["start_time DESC"], 1000, token)
        for run in page.items:
            if start_ms is None or run.end_time is None or run.end_time + SLACK_MS >= start_ms:
                out.append(run)
        token = page.next_page_token
        if not token:
            return out


# -- reading ----------------------------------------------------------------------------------
def _read_file(c: Client, run_id: str, path: str, filters: Any = None) -> pyarrow.Table:
    import pyarrow.parquet as pq

    data = c.read_artifact(run_id, path)
    return pq.read_table(io.BytesIO(data), filters=filters, schema=_schema())


def _to_prediction(table: pyarrow.Table, i: int) -> Prediction:
    import pyarrow as pa

    row = table.set_column(1, "time_ms", table.column("time_ms").cast(pa.int64())).to_pylist()[i]
    row["inputs"] = json.loads(row["inputs"])
    row["outputs"] = json.loads(row["outputs"])
    return Prediction(**row)


def find(request_id: str, *, client: Client | None = None) -> Prediction:
    """The logged prediction with ``request_id``, from any serving run; NotFound when none
    has it (yet: a server writes its log every few seconds)."""
    return locate(request_id, client=client)[1]


def locate(request_id: str, *, client: Client | None = None) -> tuple[str, Prediction]:
    """Like :func:`find`, with the id of the serving run whose log holds the prediction."""
    rid = ids.normalise(request_id)
    when = ids.time_of(rid)
    c = _client(client)
    hour = when // HOUR_MS
    shadow: tuple[str, Prediction] | None = None  # the answer's own row wins over its shadow's
    for run in serving_runs(when, when, client=c):
        for h in (hour, hour - 1, hour + 1):
            files = [e.path for e in c.store.walk_artifacts(run.run_id, partition(h * HOUR_MS))]
            # A file's name is its earliest request id: a file can only hold ``rid`` if it
            # starts at or before it, and the nearest such file is the likeliest.
            before = sorted((f for f in files if _first_id(f) <= rid), reverse=True)
            after = [f for f in files if _first_id(f) > rid]
            for path in before + after:
                table = _read_file(c, run.run_id, path, [("request_id", "=", rid)])
                for i in range(table.num_rows):
                    found = _to_prediction(table, i)
                    if found.variant != "shadow":
                        return run.run_id, found
                    shadow = shadow or (run.run_id, found)
    if shadow is not None:
        return shadow
    raise NotFound(
        f"no logged prediction has request id {rid}",
        hint="a server writes its prediction log every few seconds; check the tracking URI "
        "is the server's",
    )


def _first_id(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[len("part-") : -len(".parquet")] if name.startswith("part-") else ""


def read(
    run_id: str | None = None,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    deployment: str | None = None,
    client: Client | None = None,
) -> pandas.DataFrame:
    """Logged predictions with ``start_ms <= time < end_ms`` as a DataFrame sorted by time,
    from one serving run or all; ``inputs`` and ``outputs`` are decoded from JSON."""
    import pyarrow as pa
    import pyarrow.compute as pc

    c = _client(client)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InvalidInput(f"end {end_ms} is not after start {start_ms}")
    runs = [run_id] if run_id else [r.run_id for r in serving_runs(start_ms, end_ms, client=c)]
    tables = []
    for rid in runs:
        for entry in c.store.walk_artifacts(rid, PREFIX):
            hour = _hour_of(entry.path)
            if hour is None or not entry.path.endswith(".parquet"):
                continue
            if (start_ms is not None and hour + HOUR_MS <= start_ms) or (
                end_ms is not None and hour >= end_ms
            ):
                continue
            tables.append(_read_file(c, rid, entry.path))
    table = pa.concat_tables(tables) if tables else _schema().empty_table()
    times = table.column("time_ms").cast(pa.int64())
    mask = None
    for cond in (
        pc.greater_equal(times, start_ms) if start_ms is not None else None,
        pc.less(times, end_ms) if end_ms is not None else None,
        pc.equal(table.column("deployment"), deployment) if deployment is not None else None,
    ):
        if cond is not None:
            mask = cond if mask is None else pc.and_(mask, cond)
    if mask is not None:
        table = table.filter(mask)
    table = table.sort_by([("time_ms", "ascending"), ("request_id", "ascending")])
    frame = table.to_pandas()
    for column in ("inputs", "outputs"):
        frame[column] = [json.loads(v) for v in frame[column]]
    return frame


__all__ = [
    "COLUMNS",
    "Prediction",
    "PredictionLog",
    "find",
    "locate",
    "read",
    "serving_runs",
    "start_serving_run",
]
