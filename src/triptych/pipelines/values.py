"""How step outputs become artifacts and come back as inputs.

Each kind keeps the value safe to load (no pickle) and its digest stable for equal content, so
a downstream step's cache key does not change when an upstream step re-runs to the same result:

========== ======================================= =====================================
kind       a step returns                          stored as
========== ======================================= =====================================
dataset    a ``DatasetVersion`` (``data.add``)     a reference; loads as it, or as a
                                                   DataFrame for a ``pd.DataFrame`` input
dataframe  a pandas DataFrame or Series            Parquet
ndarray    a numpy array (not of objects)          ``.npy`` without pickle
json       dict, list, str, int, float, bool, None canonical JSON
bytes      bytes                                   the bytes
file/dir   a ``pathlib.Path``                      the file or folder
model      a fitted model ``log_model`` packages   the model package (skops)
========== ======================================= =====================================
"""

from __future__ import annotations

import inspect
import io
import json
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput
from triptych.store.entities import ArtifactEntry

OUTPUTS = "outputs"
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


@dataclass
class Stored:
    """One output as recorded by the run that produced it."""

    name: str
    kind: str
    path: str  # in the run's artifacts (a folder for models and dirs)
    digest: str  # of the content: what downstream cache keys use
    run_id: str
    entries: list[dict[str, Any]] = field(default_factory=list)  # path, digest, size
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stored:
        return cls(**data)

    def artifact_entries(self) -> list[ArtifactEntry]:
        return [ArtifactEntry(e["path"], e["digest"], e["size"]) for e in self.entries]


def kind_of(value: Any) -> str:
    """The kind a value is stored as, or InvalidInput naming what a step may return."""
    from triptych.store.entities import DatasetVersion

    if isinstance(value, DatasetVersion):
        return "dataset"
    module = type(value).__module__.split(".", 1)[0]
    if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        return "dataframe"
    if module == "numpy" and type(value).__name__ == "ndarray":
        if value.dtype.hasobject:
            raise InvalidInput("a numpy array of Python objects cannot be stored without pickle")
        return "ndarray"
    if isinstance(value, Path):
        if value.is_dir():
            return "dir"
        if value.is_file():
            return "file"
        raise InvalidInput(f"the returned path {value} does not exist")
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, _JSON_TYPES):
        return "json"
    from triptych.models import flavours

    try:
        flavours.detect(value)
    except InvalidInput:
        pass
    else:
        return "model"
    raise InvalidInput(
        f"a step returned a {type(value).__module__}.{type(value).__qualname__}, which "
        "triptych cannot store safely",
        hint="return a DataFrame, numpy array, dict/list/number/str, bytes, a pathlib.Path, "
        "a DatasetVersion or a fitted model",
    )


def save(active: Any, name: str, value: Any) -> Stored:
    """Store ``value`` as the output ``name`` of the active step run ``active``."""
    client = active.client
    run_id = active.run_id
    kind = kind_of(value)
    base = f"{OUTPUTS}/{name}"
    meta: dict[str, Any] = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if kind == "dataset":
        ref = {"name": value.name, "version": value.version, "digest": value.digest}
        entry = client.log_bytes(run_id, _json_bytes(ref), f"{base}.json")
        meta.update(ref)
        return Stored(name, kind, entry.path, value.digest, run_id, [_entry(entry)], meta)
    if kind == "model":
        from triptych.models.packaging import log_model

        logged = log_model(value, base, run=active)
        entries = [_entry(e) for e in client.store.walk_artifacts(run_id, base)]
        return Stored(name, kind, base, logged.manifest.sha256, run_id, entries, meta)
    if kind in ("file", "dir"):
        if kind == "file":
            logged_files = [client.log_artifact(run_id, value, base)]
        else:
            logged_files = client.log_artifacts(run_id, value, base)
        digest = _folder_digest([(e.path[len(base) + 1 :], e.digest) for e in logged_files])
        meta["filename"] = value.name
        files = [_entry(e) for e in logged_files]
        return Stored(name, kind, base, digest, run_id, files, meta)
    data, suffix = _encode(kind, value, meta)
    entry = client.log_bytes(run_id, data, f"{base}{suffix}")
    return Stored(name, kind, entry.path, entry.digest, run_id, [_entry(entry)], meta)


def _encode(kind: str, value: Any, meta: dict[str, Any]) -> tuple[bytes, str]:
    if kind == "dataframe":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if type(value).__name__ == "Series":
            meta["series"] = value.name if value.name is not None else 0
            value = value.to_frame(name=str(meta["series"]))
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(value), buffer)
        meta["rows"] = len(value)
        return buffer.getvalue(), ".parquet"
    if kind == "ndarray":
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        meta["shape"] = list(value.shape)
        return buffer.getvalue(), ".npy"
    if kind == "bytes":
        return bytes(value), ".bin"
    return _json_bytes(value), ".json"


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"a step returned JSON-like data that is not JSON: {e}") from None


def _entry(entry: ArtifactEntry) -> dict[str, Any]:
    return {"path": entry.path, "digest": entry.digest, "size": entry.size}


def _folder_digest(items: list[tuple[str, str]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for rel, digest in sorted(items):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def load(client: Any, stored: Stored, annotation: Any = None, workdir: Path | None = None) -> Any:
    """The value of an output, as the consuming step's ``annotation`` asks for it."""
    kind = stored.kind
    if kind == "dataset":
        from triptych.data import registry

        version = registry.get(
            f"datasets:/{stored.meta['name']}@{stored.meta['version']}", client=client
        )
        if _is_dataframe_type(annotation):
            return registry.load(version.uri, client=client)
        return version
    if kind == "model":
        from triptych.models.model import Model, load_model

        model = load_model(f"runs:/{stored.run_id}/{stored.path}", client=client)
        if annotation in (None, Any, Model) or annotation is inspect.Parameter.empty:
            return model
        return model.raw
    if kind in ("file", "dir"):
        if workdir is None:
            raise InvalidInput("loading a file output needs a work folder")
        target = workdir / stored.run_id[:12] / stored.name
        for e in stored.entries:
            local = target / e["path"][len(stored.path) + 1 :]
            local.parent.mkdir(parents=True, exist_ok=True)
            client.artifacts.download(e["digest"], local)
        return target / stored.meta["filename"] if kind == "file" else target
    data = client.artifacts.get_bytes(stored.digest)
    if kind == "dataframe":
        import pyarrow.parquet as pq

        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        if "series" in stored.meta:
            series = frame.iloc[:, 0]
            series.name = stored.meta["series"]
            return series
        return frame
    if kind == "ndarray":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "bytes":
        return data
    return json.loads(data)


def _is_dataframe_type(annotation: Any) -> bool:
    return getattr(annotation, "__name__", None) == "DataFrame" and str(
        getattr(annotation, "__module__", "")
    ).startswith("pandas")


def hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's resolved annotations (empty where they cannot be resolved)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # forward references to names that do not exist: no checks then
        return {}


def check_returned(
    step_name: str, outputs: tuple[str, ...], value: Any, annotation: Any
) -> list[Any]:
    """The returned values, one per output, checked against the return annotation."""
    if len(outputs) > 1:
        if not isinstance(value, tuple) or len(value) != len(outputs):
            raise InvalidInput(
                f"step {step_name!r} declares outputs {', '.join(outputs)} but returned "
                + (
                    f"a tuple of {len(value)}" if isinstance(value, tuple) else type(value).__name__
                ),
                hint=f"return a tuple of {len(outputs)} values",
            )
        values = list(value)
        args = typing.get_args(annotation) if typing.get_origin(annotation) is tuple else ()
        expected = list(args) if len(args) == len(outputs) else [None] * len(outputs)
    else:
        values, expected = [value], [annotation]
    for name, got, want in zip(outputs, values, expected, strict=True):
        if isinstance(want, type) and want is not object and not isinstance(got, want):
            raise InvalidInput(
                f"step {step_name!r} returned a {type(got).__name__} as {name!r}, "
                f"but is annotated {want.__name__}"
            )
    return values
