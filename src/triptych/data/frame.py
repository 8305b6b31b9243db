"""Tabular data converted once for the data modules (schema, checks, profile): a pyarrow Table,
the raw values of columns no arrow type fits, and the helpers that count and show values.

pyarrow and pandas are imported when a function needs them, so importing this is cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput

MIXED = "mixed"  # the dtype of a column whose values have no common arrow type
MAX_EXAMPLES = 5  # rows shown per violation or finding


@dataclass
class Frame:
    """Data converted once: a pyarrow Table, plus the raw values of untypeable columns.

    A pandas object column whose values have no common arrow type (``[1.5, "2.5"]``) is held in
    ``table`` as strings and its original values in ``mixed``.
    """

    table: Any
    mixed: dict[str, Any]
    rows: int

    @property
    def names(self) -> list[str]:
        return list(self.table.column_names)

    def dtype(self, name: str) -> str:
        """Canonical dtype of a column, ``"mixed"``, or the arrow type for anything else."""
        if name in self.mixed:
            return MIXED
        arrow_type = self.table.schema.field(name).type
        return canonical(arrow_type) or str(arrow_type)


def as_frame(data: Any) -> Frame:
    """Convert a pandas DataFrame or pyarrow Table/RecordBatch, once."""
    import pyarrow as pa

    if isinstance(data, Frame):
        return data
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        _check_unique(list(data.column_names))
        return Frame(_decimals_as_floats(data), {}, data.num_rows)
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"expected a pandas DataFrame or a pyarrow Table, got {type(data).__name__}"
        )
    names = [str(c) for c in data.columns]
    _check_unique(names)
    arrays: list[Any] = []
    mixed: dict[str, Any] = {}
    for position, name in enumerate(names):
        series = data.iloc[:, position]
        try:
            arrays.append(pa.chunked_array([pa.array(series, from_pandas=True)]))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            missing = series.isna().to_numpy()
            text = series.astype(str).to_numpy(dtype=object)
            arrays.append(pa.chunked_array([pa.array(text, type=pa.large_string(), mask=missing)]))
            mixed[name] = series.reset_index(drop=True)
    table = pa.Table.from_arrays(arrays, names=names)
    return Frame(_decimals_as_floats(table), mixed, len(data))


def _decimals_as_floats(table: Any) -> Any:
    """Decimal columns as float64, so they compare and aggregate like other numbers."""
    import pyarrow as pa

    for position, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(position, f.name, table.column(position).cast(pa.float64()))
    return table


def _check_unique(names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"duplicate column names {dupes}", hint="rename the columns")


def canonical(arrow_type: Any) -> str | None:
    """Canonical dtype of an arrow type, or None when outside the vocabulary."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_boolean(arrow_type):
        return "bool"
    if pt.is_integer(arrow_type):
        return "int"
    if pt.is_floating(arrow_type) or pt.is_decimal(arrow_type):
        return "float"
    if pt.is_string(arrow_type) or pt.is_large_string(arrow_type):
        return "string"
    if getattr(pa.types, "is_string_view", None) and pa.types.is_string_view(arrow_type):
        return "string"
    if pt.is_dictionary(arrow_type):
        return "category"
    if pt.is_timestamp(arrow_type) or pt.is_date(arrow_type):
        return "datetime"
    return None


def missing_mask(column: Any) -> Any:
    """Boolean array: null, or NaN in a float column."""
    import pyarrow.compute as pc
    import pyarrow.types as pt

    if pt.is_floating(column.type):
        return pc.is_null(column, nan_is_null=True)
    return pc.is_null(column)


def count_true(mask: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


def jsonable(value: Any) -> Any:
    """A Python value JSON can hold: NaN/inf become None, dates ISO strings."""
    import decimal

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return jsonable(float(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def example_rows(column: Any, mask: Any, *, values: Any = None) -> list[dict[str, Any]]:
    """The first rows where ``mask`` is true, with their values (from ``values`` if given)."""
    import pyarrow.compute as pc

    rows = pc.indices_nonzero(pc.fill_null(mask, False)).slice(0, MAX_EXAMPLES).to_pylist()
    picked = column.take(rows).to_pylist() if values is None else [values[r] for r in rows]
    return [{"row": int(r), "value": jsonable(v)} for r, v in zip(rows, picked, strict=True)]
