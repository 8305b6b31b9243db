"""Streaming a table source into one Parquet file, with a canonical content digest.

CSV (and TSV), JSON lines and Parquet files are read in record batches, so a multi-GB file
needs memory for one batch, not for the file. Each batch is written to a temporary Parquet
file and folded into the digest as it passes. CSV column types are inferred from the first
block; when a later block does not fit (an integer column meets ``1.5``, a numeric one meets
text), the column is widened (int → float → string) and the file is read again from the
start — rare, and never silently lossy.

The digest identifies the *table*, not the file: the column names and types plus a 64-bit
hash of every row (pandas' ``hash_pandas_object``), in order, through sha256. The same table
read from CSV or Parquet, or cut into different batches, has the same digest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, NotFound

# Bytes per block read from text files. Small blocks keep the reader's memory low (measured
# on a 1 GB CSV: 1 MB blocks peak at ~170 MB RSS, 16 MB blocks at ~480 MB); rows are then
# gathered into row groups of ROW_GROUP rows for the Parquet file and the digest.
CSV_BLOCK = 1 << 20
ROW_GROUP = 128 * 1024
FRAME_BATCH = 250_000  # rows per batch when the source is already in memory
MAX_WIDENINGS = 8
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

Progress = Callable[[int, int], None]  # (done, total): bytes for text files, rows for Parquet


class _CountingFile(io.RawIOBase):
    """A binary file that counts the bytes read through it, for progress bars."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer) or 0
        self.done += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass(frozen=True)
class Ingested:
    """A source turned into one Parquet file, and what identifies its content."""

    path: Path
    digest: str
    rows: int
    schema: Any  # pyarrow.Schema
    source: str


class TableDigest:
    """sha256 over the schema and per-row hashes: independent of file format and batching."""

    def __init__(self, schema: Any) -> None:
        self._hash = hashlib.sha256()
        fields = [[f.name, str(f.type)] for f in schema]
        self._hash.update(json.dumps(fields).encode())

    def update(self, batch: Any) -> None:
        """Fold in the rows of a record batch or table, in order."""
        import pandas as pd

        if batch.num_rows:
            frame = batch.to_pandas()
            self._hash.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def source_kind(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the file name; a clear error otherwise."""
    name = path.name.lower()
    for kind, suffixes in (
        ("parquet", PARQUET_SUFFIXES),
        ("csv", CSV_SUFFIXES),
        ("jsonl", JSONL_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    raise InvalidInput(
        f"cannot tell the format of {path.name}",
        hint="use a .csv, .tsv, .jsonl/.ndjson or .parquet file, or pass a DataFrame",
    )


def ingest(source: Any, out_dir: Path, progress: Progress | None = None) -> Ingested:
    """Write ``source`` (a path or an in-memory table) as Parquet under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{os.urandom(8).hex()}.parquet"
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise NotFound(f"no file at {path}")
            kind = source_kind(path)
            if kind == "csv":
                return _ingest_csv(path, target, progress)
            if kind == "parquet":
                total = _parquet_rows(path)
                report = (lambda rows: progress(rows, total)) if progress else None
                return _write(_parquet_batches(path), target, str(path.resolve()), report)
            with _CountingFile(path) as counted:
                size = path.stat().st_size
                report = (lambda _rows: progress(counted.done, size)) if progress else None
                return _write(_jsonl_batches(path, counted), target, str(path.resolve()), report)
        return _write(_frame_batches(source), target, _describe(source))
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _describe(source: Any) -> str:
    return f"{type(source).__module__.split('.')[0]}.{type(source).__name__}"


def _write(
    batches: Iterator[Any],
    target: Path,
    source: str,
    report: Callable[[int], None] | None = None,
) -> Ingested:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    digest = None
    rows = 0
    schema = None
    pending: list[Any] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if writer is None or digest is None or not pending:
            return
        group = pa.Table.from_batches(pending, schema=schema).combine_chunks()
        writer.write_table(group, row_group_size=max(group.num_rows, 1))
        digest.update(group)
        pending, pending_rows = [], 0

    try:
        for batch in batches:
            if writer is None:
                schema = canonical_schema(batch.schema)
                _check_names(schema)
                writer = pq.ParquetWriter(target, schema)
                digest = TableDigest(schema)
            if batch.schema != schema:
                batch = _conform(batch, schema)
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP:
                flush()
            if report is not None:
                report(rows)
        flush()
        if writer is not None and rows == 0:
            writer.write_table(pa.Table.from_batches([], schema=schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None or digest is None:
        raise InvalidInput(f"{source} has no columns", hint="a table needs a header row")
    return Ingested(target, digest.hexdigest(), rows, schema, source)


def canonical_schema(schema: Any) -> Any:
    """One spelling per logical type, so that the source format does not change the digest:
    large strings/binaries become plain ones, dictionary (category) columns their values."""
    import pyarrow as pa

    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_large_binary(t):
            t = pa.binary()
        fields.append(pa.field(f.name, t, f.nullable))
    return pa.schema(fields)


def _conform(batch: Any, schema: Any) -> Any:
    try:
        return batch.cast(schema)
    except Exception as e:
        raise InvalidInput(f"a later part of the data has other types: {e}") from e


def _check_names(schema: Any) -> None:
    names = list(schema.names)
    if any(not isinstance(n, str) or not n.strip() for n in names):
        raise InvalidInput(f"column names must be non-empty text, got {names}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"duplicate column names: {', '.join(duplicates)}")


# -- sources ------------------------------------------------------------------------------------
def _frame_batches(frame: Any) -> Iterator[Any]:
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        table = frame
    elif type(frame).__module__.split(".")[0] == "pandas":
        table = pa.Table.from_pandas(frame, preserve_index=False)
    else:
        raise InvalidInput(
            f"cannot add {type(frame).__name__} as a dataset",
            hint="pass a CSV/JSONL/Parquet path, a pandas DataFrame or a pyarrow Table",
        )
    table = table.replace_schema_metadata(None)
    yield from table.to_batches(max_chunksize=FRAME_BATCH) or [
        table.to_batches()[:1] or _empty(table)
    ]


def _empty(table: Any) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([], schema=table.schema)


def _parquet_batches(path: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as e:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {e}") from e
    schema = file.schema_arrow.remove_metadata()
    empty = True
    for batch in file.iter_batches(batch_size=FRAME_BATCH):
        empty = False
        yield batch.replace_schema_metadata(None)
    if empty:
        import pyarrow as pa

        yield pa.RecordBatch.from_pylist([], schema=schema)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception as e:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {e}") from e


def _jsonl_batches(path: Path, stream: Any) -> Iterator[Any]:
    import pyarrow.json as pj

    try:
        reader = pj.open_json(stream, read_options=pj.ReadOptions(block_size=CSV_BLOCK))
        yield from reader
    except Exception as e:
        raise InvalidInput(f"{path.name}: {_first_line(str(e))}", hint=_jsonl_hint(path)) from e


def _jsonl_hint(path: Path) -> str:
    line = _bad_json_line(path)
    return f"line {line} is not a JSON object" if line else "each line must be one JSON object"


def _bad_json_line(path: Path) -> int | None:
    with _open_text(path) as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                if not isinstance(json.loads(text), dict):
                    return number
            except ValueError:
                return number
    return None


# -- CSV ----------------------------------------------------------------------------------------
def _ingest_csv(path: Path, target: Path, progress: Progress | None) -> Ingested:
    import pyarrow as pa

    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    forced: dict[str, Any] = {}
    size = path.stat().st_size
    for _ in range(MAX_WIDENINGS):
        try:
            with _CountingFile(path) as counted:
                report = (lambda _rows: progress(counted.done, size)) if progress else None
                batches = _csv_batches(counted, delimiter, forced)
                return _write(batches, target, str(path.resolve()), report)
        except _Widen as w:
            forced[w.column] = w.to
            target.unlink(missing_ok=True)
        except pa.ArrowInvalid as e:
            raise _csv_error(path, delimiter, e) from e
    raise InvalidInput(f"{path.name}: column types kept changing; give them explicitly")


class _Widen(Exception):
    def __init__(self, column: str, to: Any) -> None:
        self.column, self.to = column, to


def _csv_batches(stream: Any, delimiter: str, forced: dict[str, Any]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(column_types=forced, strings_can_be_null=True),
    )
    names = reader.schema.names
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            m = _CONVERSION.search(str(e))
            if not m:
                raise
            column = names[int(m.group(1))]
            current = m.group(2)
            to = (
                pa.float64()
                if current in ("int64", "int32", "int8", "int16", "null") and _numeric(e)
                else pa.string()
            )
            if forced.get(column) == to:
                raise
            raise _Widen(column, to) from e
        yield batch


def _numeric(error: Exception) -> bool:
    value = re.search(r"invalid value '([^']*)'", str(error))
    if not value:
        return False
    try:
        float(value.group(1))
        return True
    except ValueError:
        return False


def _csv_error(path: Path, delimiter: str, error: Exception) -> InvalidInput:
    """The problem and the line it is on: pyarrow names neither row nor line, so find it."""
    line, expected, got = _bad_csv_line(path, delimiter)
    problem = _first_line(str(error)).replace("CSV parse error: ", "")
    if line is not None:
        return InvalidInput(
            f"{path.name}, line {line}: expected {expected} fields, found {got}",
            hint="fix or remove that line (quote fields that contain the delimiter)",
        )
    return InvalidInput(f"{path.name}: {problem}")


def _bad_csv_line(path: Path, delimiter: str) -> tuple[int | None, int, int]:
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        expected = None
        for row in reader:
            if expected is None:
                expected = len(row)
            elif row and len(row) != expected:
                return reader.line_num, expected, len(row)
    return None, expected or 0, 0


def _open_text(path: Path) -> io.TextIOBase:
    import gzip

    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
