"""The dataset registry: add, find, load, tag, validate, trace and delete dataset versions.

Bytes live in the artifact store as one Parquet file per version (content-addressed, so a
version that shares its file with another costs nothing). The metadata store numbers the
versions, remembers the expected schema, the profile and who used what.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.data.ingest import Ingested, ingest
from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.store.base import validate_dataset_name
from triptych.store.entities import DataInput, Dataset, DatasetVersion, DatasetVersionSpec, Run

if TYPE_CHECKING:
    from triptych.data.schema import Schema, Violation
    from triptych.tracking.client import Client

SCHEME = "datasets:/"
_REF = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<version>latest|\d+))?$")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DatasetRef:
    """``NAME`` or ``NAME@latest`` (version None) or ``NAME@3``."""

    name: str
    version: int | None

    def __str__(self) -> str:
        return f"{SCHEME}{self.name}@{self.version if self.version else 'latest'}"


def parse_ref(text: str) -> DatasetRef:
    """Parse ``datasets:/NAME@VERSION``, ``NAME@VERSION`` or ``NAME`` (latest)."""
    body = text[len(SCHEME) :] if text.startswith(SCHEME) else text
    m = _REF.match(body.strip())
    if not m:
        raise InvalidInput(
            f"invalid dataset address {text!r}",
            hint="use datasets:/NAME@latest, datasets:/NAME@3 or NAME@3",
        )
    version = m["version"]
    return DatasetRef(
        validate_dataset_name(m["name"]),
        int(version) if version and version != "latest" else None,
    )


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()


# -- adding -------------------------------------------------------------------------------------
def add(
    name: str,
    source: Any,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    client: Client | None = None,
) -> DatasetVersion:
    """Add ``source`` (a CSV/TSV, JSON lines or Parquet path, a DataFrame or an Arrow table)
    as the next version of ``name``. Identical content returns the existing version.

    Large files stream through in batches (bounded memory); a malformed file raises
    :class:`InvalidInput` naming the line, and nothing is recorded."""
    validate_dataset_name(name)
    c = _client(client)
    store = c.store
    from triptych.tracking import fluent

    run = fluent.active_run()
    with tempfile.TemporaryDirectory(prefix="triptych-data-") as tmp:
        ingested = ingest(source, Path(tmp), progress)
        existing = _same_content(c, name, ingested.digest)
        if existing is not None:
            return existing
        schema = _expected_or_inferred(c, name, ingested)
        profile = profile_file(ingested.path)
        blob = c.artifacts.put_file(ingested.path)
    version, _ = store.create_dataset_version(
        DatasetVersionSpec(
            name=name,
            digest=ingested.digest,
            blob_digest=blob.digest,
            rows=ingested.rows,
            size=blob.size,
            schema=schema.to_dict(),
            profile=profile,
            source=ingested.source,
            description=description,
            tags={k: str(v) for k, v in (tags or {}).items()},
            creator_run_id=run.run_id if run else None,
        )
    )
    return version


def _same_content(client: Client, name: str, digest: str) -> DatasetVersion | None:
    try:
        versions = client.store.list_dataset_versions(name)
    except NotFound:
        return None
    return next((v for v in versions if v.digest == digest), None)


def _expected_or_inferred(client: Client, name: str, ingested: Ingested) -> Schema:
    """The dataset's schema when it has one; else inferred from this (first) version."""
    from triptych.data.schema import Schema

    try:
        expected = client.store.get_dataset(name).schema
    except NotFound:
        expected = None
    if expected:
        return Schema.from_dict(dict(expected))
    return infer_file_schema(ingested.path)


def _row_groups(path: Path, columns: list[str] | None = None) -> Iterator[Any]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    for i in range(file.num_row_groups):
        yield file.read_row_group(i, columns=columns)


def infer_file_schema(path: Path, max_categories: int = 20) -> Schema:
    """Infer a schema one row group at a time and merge: memory stays bounded."""
    from triptych.data.schema import ColumnSchema, Schema, infer_schema

    merged: dict[str, ColumnSchema] = {}
    distinct: dict[str, set[str]] = {}
    rows = 0
    for table in _row_groups(path):
        rows += table.num_rows
        part = infer_schema(table, max_categories=max_categories)
        for col in part.columns:
            seen = merged.get(col.name)
            if seen is None:
                merged[col.name] = col
                distinct[col.name] = set(col.categories or [])
                continue
            seen.nullable = seen.nullable or col.nullable
            if col.min is not None:
                seen.min = col.min if seen.min is None else min(seen.min, col.min)
            if col.max is not None:
                seen.max = col.max if seen.max is None else max(seen.max, col.max)
            if seen.dtype != col.dtype:
                seen.dtype = _wider(seen.dtype, col.dtype)
            distinct[col.name] |= set(col.categories or [])
    for name, col in merged.items():
        if col.dtype == "category":
            values = distinct[name]
            if len(values) > max_categories or len(values) * 2 >= max(rows, 1):
                col.dtype, col.categories = "string", None
            else:
                col.categories = sorted(values)
        else:
            col.categories = None  # widened to string in a later row group
        if col.dtype not in ("int", "float"):
            col.min = col.max = None
    return Schema(list(merged.values()))


def _wider(a: str, b: str) -> str:
    if {a, b} == {"int", "float"}:
        return "float"
    if {a, b} <= {"category", "string"}:
        return "category" if a == b == "category" else "string"
    return "string"


def profile_file(path: Path, bins: int = 20, top: int = 10) -> dict[str, Any]:
    """Profile a Parquet file one column at a time (a column must fit in memory, not the
    table)."""
    import pyarrow.parquet as pq

    from triptych.data.profile import profile

    file = pq.ParquetFile(path)
    result: dict[str, Any] = {"rows": file.metadata.num_rows, "columns": {}}
    for name in file.schema_arrow.names:
        column = pq.read_table(path, columns=[name])
        result["columns"].update(profile(column, bins=bins, top=top)["columns"])
    return result


# -- finding and loading ------------------------------------------------------------------------
def get(ref: str, *, client: Client | None = None) -> DatasetVersion:
    """The version an address names (``datasets:/NAME@latest``, ``NAME@3``…); ``@latest``
    means the version pinned in ``$TRIPTYCH_DATASET_PINS`` when the dataset is pinned there."""
    parsed = parse_ref(ref)
    version = parsed.version if parsed.version is not None else pins().get(parsed.name)
    return _client(client).store.get_dataset_version(parsed.name, version)


PINS_ENV = "TRIPTYCH_DATASET_PINS"
_pins_cache: tuple[str, dict[str, int]] = ("", {})


def pins() -> dict[str, int]:
    """``{name: version}`` from ``$TRIPTYCH_DATASET_PINS`` (a JSON object): the versions
    ``@latest`` resolves to, e.g. in a run started by ``triptych reproduce``. Parsed once per
    value of the variable."""
    global _pins_cache
    raw = os.environ.get(PINS_ENV, "")
    if not raw:
        return {}
    if raw == _pins_cache[0]:
        return _pins_cache[1]
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in parsed.values()
    ):
        raise InvalidInput(
            f"{PINS_ENV} must be a JSON object of dataset name to version, got {raw[:100]!r}",
            hint=f"""e.g. {PINS_ENV}='{{"diabetes": 3}}', or unset it""",
        )
    _pins_cache = (raw, {validate_dataset_name(k): v for k, v in parsed.items()})
    return _pins_cache[1]


def list_datasets(*, client: Client | None = None) -> list[Dataset]:
    return _client(client).store.list_datasets()


def versions(name: str, *, client: Client | None = None) -> list[DatasetVersion]:
    return _client(client).store.list_dataset_versions(validate_dataset_name(name))


def load(ref: str, *, columns: list[str] | None = None, client: Client | None = None) -> Any:
    """The version's table as a pandas DataFrame (bytes verified against their digest)."""
    return load_table(ref, columns=columns, client=client).to_pandas()


def load_table(ref: str, *, columns: list[str] | None = None, client: Client | None = None) -> Any:
    """The version's table as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = _client(client)
    version = get(ref, client=c)
    data = c.artifacts.get_bytes(version.blob_digest)
    # Copy into an Arrow-owned buffer: reading straight from Python bytes lets an Arrow
    # thread free them during interpreter shutdown, which aborts the process (apache/arrow
    # #34314); the copy costs one memcpy of the file.
    owned = pa.BufferOutputStream()
    owned.write(data)
    del data
    try:
        return pq.read_table(pa.BufferReader(owned.getvalue()), columns=columns)
    except (KeyError, pa.ArrowInvalid) as e:
        raise InvalidInput(f"{version.uri}: {e}", hint=f"columns: {_columns(version)}") from e


def _columns(version: DatasetVersion) -> str:
    cols = (version.schema or {}).get("columns", {})
    return ", ".join(cols) if isinstance(cols, dict) else ""


def describe(ref: str, *, client: Client | None = None) -> DataInput:
    """What a run records when it uses a registered version (``log_input("datasets:/…")``)."""
    version = get(ref, client=client)
    cols = (version.schema or {}).get("columns", {})
    schema = {k: v.get("dtype", "?") for k, v in cols.items()} if isinstance(cols, dict) else None
    return DataInput(
        name=f"{version.name}@{version.version}",
        digest=version.digest,
        rows=version.rows,
        schema=schema,
        source=version.uri,
    )


# -- changing -----------------------------------------------------------------------------------
def tag(ref: str, tags: Mapping[str, Any], *, client: Client | None = None) -> DatasetVersion:
    version = get(ref, client=client)
    c = _client(client)
    c.store.update_dataset_version(
        version.name, version.version, tags={k: str(v) for k, v in tags.items()}
    )
    return c.store.get_dataset_version(version.name, version.version)


def get_schema(name: str, *, client: Client | None = None) -> Schema:
    """The schema new data of ``name`` is validated against."""
    from triptych.data.schema import Schema

    found = _client(client).store.get_dataset(validate_dataset_name(name)).schema
    if not found:
        raise NotFound(f"dataset {name!r} has no schema yet", hint="add a version first")
    return Schema.from_dict(dict(found))


def set_schema(name: str, schema: Schema, *, client: Client | None = None) -> None:
    """Replace the expected schema of ``name`` (e.g. after editing its YAML)."""
    _client(client).store.set_dataset_schema(validate_dataset_name(name), schema.to_dict())


def lineage(ref: str, *, client: Client | None = None) -> list[Run]:
    """The runs that used this version, oldest first."""
    c = _client(client)
    version = get(ref, client=c)
    return [c.store.get_run(run_id) for run_id in c.store.runs_with_input(version.digest)]


def models_trained_on(ref: str, *, client: Client | None = None) -> list[Any]:
    """Registered model versions whose run used this version's data."""
    c = _client(client)
    version = get(ref, client=c)
    return c.store.model_versions_of_runs(c.store.runs_with_input(version.digest))


def delete(ref: str, *, force: bool = False, client: Client | None = None) -> DatasetVersion:
    """Delete a version. Refused while runs used its content and no other version holds the
    same content (``force=True`` overrides); the Parquet bytes are removed only when no other
    version or artifact shares them."""
    c = _client(client)
    version = get(ref, client=c)
    users = c.store.runs_with_input(version.digest)
    # Runs keep their lineage while another version holds the same content.
    twins = [
        v
        for v in c.store.versions_with_digest(version.digest)
        if v != (version.name, version.version)
    ]
    if users and not twins and not force:
        raise Conflict(
            f"{version.uri} was used by {len(users)} run(s): {', '.join(u[:8] for u in users[:5])}",
            hint="their lineage would break; pass force=True (CLI: --force) to delete anyway",
        )
    c.store.delete_dataset_version(version.name, version.version)
    if not c.store.blob_in_use(version.blob_digest):
        c.artifacts.delete(version.blob_digest)
    return version


# -- validating ---------------------------------------------------------------------------------
@contextmanager
def _as_parquet(source: Any) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="triptych-data-") as tmp:
        yield ingest(source, Path(tmp)).path


def validate(name: str, source: Any, *, client: Client | None = None) -> list[Violation]:
    """Every way ``source`` departs from the schema of ``name`` (empty: it conforms).

    Streams ``source`` one row group at a time; counts add up over the whole file and row
    numbers in examples count from the first data row."""
    from triptych.data.schema import Violation
    from triptych.data.schema import validate as check

    schema = get_schema(name, client=client)
    merged: dict[tuple[str, str], Violation] = {}
    first_counts: dict[tuple[str, str], int] = {}
    offset = 0
    with _as_parquet(source) as path:
        for table in _row_groups(path):
            for v in check(table, schema):
                key = (v.kind, v.column)
                examples = [{**e, "row": e["row"] + offset} for e in v.examples if "row" in e]
                if key not in merged:
                    merged[key] = Violation(v.kind, v.column, v.message, v.count, examples[:5])
                    first_counts[key] = v.count
                else:
                    seen = merged[key]
                    seen.count += v.count
                    seen.examples = (seen.examples + examples)[:5]
            offset += table.num_rows
    for key, v in merged.items():
        first = first_counts[key]
        if v.count != first:  # the message quotes the first batch's count: make it the total
            v.message = v.message.replace(f" {first} ", f" {v.count} ", 1)
    return list(merged.values())


def check(
    name: str,
    source: Any,
    *,
    reference: str | None = None,
    max_missing: float | Mapping[str, float] = 0.0,
    psi_threshold: float = 0.2,
    ks_pvalue: float | None = 0.05,
    client: Client | None = None,
) -> tuple[DatasetVersion, list[Any]]:
    """The three data tests on ``source``: the schema of ``name``, missing values, and the
    distribution shift against ``reference`` (default: the latest version of ``name``).
    Returns the reference version and one ``CheckResult`` per test."""
    import pyarrow.parquet as pq

    from triptych.data.checks import distribution_shift_check, missing_values_check, schema_check

    c = _client(client)
    expected = get_schema(name, client=c)
    baseline_version = get(reference or f"{name}@latest", client=c)
    with _as_parquet(source) as path:
        current = pq.read_table(path)
    baseline = load_table(baseline_version.uri, client=c)
    return baseline_version, [
        schema_check(current, expected),
        missing_values_check(
            current, dict(max_missing) if isinstance(max_missing, Mapping) else max_missing
        ),
        distribution_shift_check(
            baseline, current, psi_threshold=psi_threshold, ks_pvalue=ks_pvalue
        ),
    ]
