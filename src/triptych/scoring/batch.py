"""Batch scoring: a model over a Parquet or CSV file too big for memory.

The input is streamed in chunks (a pyarrow dataset for Parquet, the streaming CSV reader for
text), each chunk is checked row by row against the model's signature, the valid rows are
scored by a pool of worker threads (numpy and scikit-learn release the GIL in their kernels),
and the results are written in input order. Rejected rows go to a side file with their reason.
Both files are written under temporary names and renamed at the end, so a job that stops (past
the error threshold, on Ctrl-C, on a crash) leaves no half-written output behind.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from triptych.models.model import Model
    from triptych.tracking.client import Client

PREDICTION = "prediction"
REASON = "reason"
ROW = "row"
CSV_BLOCK = 4 << 20  # bytes the CSV reader parses at a time
SAMPLE = 5  # reasons kept for the summary


@dataclass
class BatchResult:
    """What a batch job did: counts, files and a sample of the rejection reasons."""

    model_uri: str
    input: str
    output: str
    rejects: str | None
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "input": self.input,
            "output": self.output,
            "rejects": self.rejects,
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "sample": self.sample,
        }


Progress = Callable[[int, int | None], None]  # (rows done, total rows or None)


def score_file(
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_size: int = 10_000,
    workers: int = 1,
    max_error_rate: float = 0.01,
    rejects_path: str | Path | None = None,
    allow_missing: bool = False,
    progress: Progress | None = None,
    client: Client | None = None,
) -> BatchResult:
    """Score every row of ``input_path`` with the model at ``model_uri`` into ``output_path``
    (the input columns plus the prediction column(s)); rejected rows go to ``rejects_path``
    (default: ``<output>.rejects.parquet``, written only when a row is rejected). Raises
    InvalidInput, with nothing written, once more than ``max_error_rate`` of the rows read so
    far were rejected."""
    from triptych.models.model import load_model

    source, target = Path(input_path), _output(output_path)
    _check_args(source, target, chunk_size, workers, max_error_rate)
    side = (
        _output(rejects_path)
        if rejects_path
        else target.with_name(target.stem + ".rejects.parquet")
    )
    if side.resolve() in (source.resolve(), target.resolve()):
        raise InvalidInput("the rejects file must differ from the input and the output")
    model = load_model(model_uri, client=client)
    result = BatchResult(model_uri, str(source), str(target), None)
    started = time.perf_counter()
    chunks, total = _read(source, chunk_size)
    out = _Sink(target)
    bad = _Sink(side)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="triptych-score") as pool:
            pending: deque[Future[tuple[pa.Table, pa.Table | None]]] = deque()
            offset = 0
            for chunk in chunks:
                pending.append(pool.submit(_score_chunk, model, chunk, offset, allow_missing))
                offset += chunk.num_rows
                while len(pending) > 2 * workers or (pending and pending[0].done()):
                    _collect(pending.popleft().result(), out, bad, result, max_error_rate)
                    if progress:
                        progress(result.rows, total)
            while pending:
                _collect(pending.popleft().result(), out, bad, result, max_error_rate)
                if progress:
                    progress(result.rows, total)
        if result.rows == 0:
            raise InvalidInput(f"{source} has no rows", hint="nothing to score")
        out.commit()
        if result.rejected:
            bad.commit()
            result.rejects = str(side)
    except BaseException:
        out.discard()
        bad.discard()
        raise
    result.seconds = time.perf_counter() - started
    return result


def _output(path: str | Path) -> Path:
    """An output path made absolute once, ``..`` resolved (``a/../x`` creates no ``a``);
    InvalidInput for a name no file system can hold."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        raw = b"\x00"
    if b"\x00" in raw:
        raise InvalidInput(f"cannot write {os.fspath(path)!r}: not a valid file name (NUL?)")
    return Path(os.path.abspath(path))


def _check_args(
    source: Path, target: Path, chunk_size: int, workers: int, max_error_rate: float
) -> None:
    if not source.exists():
        raise NotFound(f"no input at {source}")
    if target.suffix != ".parquet":
        raise InvalidInput(f"the output {target} must be a .parquet file")
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidInput("the output must differ from the input")
    if chunk_size < 1 or workers < 1:
        raise InvalidInput("--chunk-size and --workers must be at least 1")
    if not 0 <= max_error_rate <= 1:
        raise InvalidInput(f"--max-error-rate {max_error_rate} is not between 0 and 1")


# -- reading ------------------------------------------------------------------------------------
def _read(source: Path, chunk_size: int) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Chunks of at most ``chunk_size`` rows, and the row count when known without reading."""
    name = source.name.lower()
    if name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")):
        return _rechunk(_csv_batches(source, "\t" if ".tsv" in name else ","), chunk_size), None
    if name.endswith((".parquet", ".pq")) or source.is_dir():
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset(source, format="parquet")
            total = dataset.count_rows()
        except Exception as e:  # not Parquet, or unreadable
            raise InvalidInput(f"cannot read {source} as Parquet: {e}") from e
        return _rechunk(_parquet_batches(dataset.files, chunk_size), chunk_size), total
    raise InvalidInput(
        f"cannot tell the format of {source}", hint="give a .parquet, .csv or .tsv file"
    )


def _parquet_batches(files: list[str], chunk_size: int) -> Iterator[pa.RecordBatch]:
    """File by file, pulled on demand and without pre-buffering: the reader then holds one
    buffer and the batch being decoded (measured: 3 MB for a 15 MB file read by a slow
    consumer, where the dataset scanner ran ahead to 23 MB)."""
    import pyarrow.parquet as pq

    for path in files:
        with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as file:
            yield from file.iter_batches(batch_size=chunk_size)


def _csv_batches(source: Path, delimiter: str) -> Iterator[pa.RecordBatch]:
    """Every column as text: types are decided per row by the signature checks, and the
    columns the model does not use are copied as they are written."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pcsv

    head = b""
    with pa.input_stream(str(source), compression="detect") as raw:
        while b"\n" not in head:
            block = raw.read(1 << 16)
            if not block:
                break
            head += block
    header = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    names = next(csv.reader([header], delimiter=delimiter), [])
    if not names:
        raise InvalidInput(f"{source} has no header line")
    try:
        reader = pcsv.open_csv(
            pa.input_stream(str(source), compression="detect"),
            read_options=pcsv.ReadOptions(block_size=CSV_BLOCK),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
            ),
        )
        yield from reader
    except pa.ArrowInvalid as e:
        raise InvalidInput(f"cannot read {source} as CSV: {e}") from e


def _rechunk(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``size`` rows (the last one shorter), whatever the reader gives."""
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, size).combine_chunks().to_batches()[0]
            rest = table.slice(size)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        table = pa.Table.from_batches(held).combine_chunks()
        yield from table.to_batches()[:1]


# -- scoring ------------------------------------------------------------------------------------
def _score_chunk(
    model: Model, chunk: pa.RecordBatch, offset: int, allow_missing: bool
) -> tuple[pa.Table, pa.Table | None]:
    """``(scored rows, rejected rows or None)`` of one chunk; runs in a worker thread."""
    import numpy as np
    import pyarrow as pa

    from triptych.scoring import rows

    table = pa.Table.from_batches([chunk])
    if model.signature is None:
        frame = table.to_pandas()
        valid = np.ones(table.num_rows, dtype=bool)
        reasons: list[str | None] = [None] * table.num_rows
    else:
        checked = rows.check(table, model.signature, allow_missing)
        frame, valid, reasons = checked.frame, checked.valid, checked.reasons
    predictions, failed = _predict(model, frame)
    if failed:  # rows the model itself refused, found one by one
        positions = np.flatnonzero(valid)
        for j, why in failed.items():
            valid[positions[j]] = False
            reasons[positions[j]] = why
        frame = frame.drop(frame.index[list(failed)])
    kept = table.filter(pa.array(valid))
    if model.signature is not None:  # the model's columns, as converted and checked
        for name in model.signature.names:
            kept = kept.set_column(
                kept.schema.get_field_index(name), name, pa.array(frame[name], from_pandas=True)
            )
    for name, values in predictions.items():
        if name in kept.schema.names:
            raise InvalidInput(
                f"the input already has a column {name!r}, where predictions go",
                hint="rename that column in the input",
            )
        kept = kept.append_column(name, values)
    rejected = None
    if not valid.all():
        where = np.flatnonzero(~valid)
        rejected = table.take(pa.array(where))
        rejected = rejected.append_column(ROW, pa.array(where + offset + 1, pa.int64()))
        rejected = rejected.append_column(REASON, pa.array([reasons[i] for i in where]))
    return kept, rejected


def _predict(model: Model, frame: Any) -> tuple[dict[str, pa.Array], dict[int, str]]:
    """Prediction columns for ``frame``; when the model fails on the chunk, rows are retried
    one by one and those that still fail are returned by position with the error."""
    if frame.empty:
        return _columns(model, None, 0), {}
    try:
        return _columns(model, _call(model, frame), len(frame)), {}
    except InvalidInput:
        raise
    except Exception:
        pass
    good, failed = [], {}
    for j in range(len(frame)):
        try:
            _call(model, frame.iloc[j : j + 1])
            good.append(j)
        except Exception as e:
            failed[j] = f"predict failed: {type(e).__name__}: {str(e)[:200]}"
    rest = frame.iloc[good]
    return _columns(model, _call(model, rest) if good else None, len(rest)), failed


def _call(model: Model, frame: Any) -> Any:
    """The model's own predict: the signature-checked path when it has a signature."""
    return model.predict(frame) if model.signature is not None else model.raw.predict(frame)


def _columns(model: Model, values: Any, n: int) -> dict[str, pa.Array]:
    """One ``prediction`` column, ``prediction_0…`` for 2-D output, a frame's own columns."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if values is None:
        output = model.signature.output if model.signature else None
        kind = output.dtype if output else "float"
        typ = {"int": pa.int64(), "bool": pa.bool_(), "string": pa.string()}.get(
            kind or "float", pa.float64()
        )
        return {PREDICTION: pa.array([], typ)}
    if isinstance(values, pd.DataFrame):
        return {f"{PREDICTION}_{c}": pa.array(values[c], from_pandas=True) for c in values}
    array = np.asarray(values)
    if len(array) != n:
        raise InvalidInput(f"the model returned {len(array)} predictions for {n} rows")
    if array.ndim == 1:
        return {PREDICTION: pa.array(array, from_pandas=True)}
    flat = array.reshape(n, -1)
    return {f"{PREDICTION}_{i}": pa.array(flat[:, i]) for i in range(flat.shape[1])}


# -- writing ------------------------------------------------------------------------------------
def _collect(
    done: tuple[pa.Table, pa.Table | None],
    out: _Sink,
    bad: _Sink,
    result: BatchResult,
    max_error_rate: float,
) -> None:
    kept, rejected = done
    result.rows += kept.num_rows + (rejected.num_rows if rejected is not None else 0)
    result.scored += kept.num_rows
    out.write(kept)
    if rejected is not None:
        result.rejected += rejected.num_rows
        bad.write(rejected)
        room = SAMPLE - len(result.sample)
        if room > 0:
            result.sample += rejected.select([ROW, REASON]).slice(0, room).to_pylist()
    if result.rejected > max_error_rate * result.rows:
        reasons = "; ".join(f"row {s[ROW]}: {s[REASON]}" for s in result.sample[:3])
        raise InvalidInput(
            f"{result.rejected} of the first {result.rows} rows were rejected "
            f"({result.rejected / result.rows:.1%}, over --max-error-rate "
            f"{max_error_rate:.1%}); stopped, nothing written. First: {reasons}",
            hint="fix the input, or raise --max-error-rate to set more rows aside",
        )


class _Sink:
    """A Parquet file written under a temporary name and renamed into place at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.writer: Any = None

    def write(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        elif table.schema != self.writer.schema:
            table = _conform(table, self.writer.schema)
        if table.num_rows:
            self.writer.write_table(table)

    def commit(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.tmp.unlink(missing_ok=True)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to the file's schema (an all-null chunk, an int chunk in a float file)."""
    try:
        return table.select(schema.names).cast(schema)
    except Exception as e:
        raise InvalidInput(
            f"a chunk's columns do not match the first chunk's: {e}",
            hint="the input's column types change along the file",
        ) from e
