"""Schemas of tabular data: infer one, keep it as YAML, validate data against it.

A :class:`Schema` is a list of :class:`ColumnSchema`, each with a dtype from a small canonical
vocabulary (:data:`DTYPES`), whether nulls are allowed, an optional numeric range and an
optional set of categories. It round-trips through a dict and a human-editable YAML mapping::

    columns:
      age: {dtype: int, nullable: false, min: 18, max: 99}
      city: {dtype: category, nullable: true, categories: [Lyon, Paris]}

:func:`infer_schema` proposes a schema from data; :func:`validate` reports *every* way data
departs from a schema as a list of :class:`Violation`, with counts and a few examples.

Data is a pandas DataFrame or a pyarrow Table (or RecordBatch), converted once to a pyarrow
Table. In float columns NaN counts as a null. pandas, pyarrow and numpy are imported when a
function needs them, so importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triptych.data.frame import (
    MAX_EXAMPLES,
    MIXED,
    Frame,
    as_frame,
    count_true,
    example_rows,
    missing_mask,
)
from triptych.errors import InvalidInput

#: The canonical dtypes a column can have.
DTYPES = ("int", "float", "bool", "string", "category", "datetime")

#: The kinds of :class:`Violation`, in the order :func:`validate` checks a column.
VIOLATION_KINDS = (
    "missing_column",
    "extra_column",
    "dtype",
    "nulls",
    "out_of_range",
    "unknown_category",
)

_COLUMN_KEYS = ("dtype", "nullable", "min", "max", "categories")
# Observed dtypes that satisfy an expected dtype (beyond equality).
_ACCEPTS = {"float": {"int"}, "category": {"string"}, "string": {"category"}}
# A pandas object column whose values arrow cannot give a single type (e.g. 1.5 and "2.5").


@dataclass
class ColumnSchema:
    """One column: canonical ``dtype``, nulls allowed, inclusive numeric range, categories.

    ``min``/``max`` apply to int and float columns only, ``categories`` to category columns
    only (``None`` means any value is accepted).
    """

    name: str
    dtype: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None

    def __post_init__(self) -> None:
        where = f"schema column {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(
                f"column names must be non-empty strings, got {self.name!r}",
                hint="quote the name in YAML, e.g. '2024': {dtype: int}",
            )
        if self.dtype not in DTYPES:
            raise InvalidInput(
                f"{where}: unknown dtype {self.dtype!r}", hint=f"use one of {', '.join(DTYPES)}"
            )
        if not isinstance(self.nullable, bool):
            raise InvalidInput(f"{where}: nullable must be true or false, got {self.nullable!r}")
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if self.dtype not in ("int", "float"):
                raise InvalidInput(
                    f"{where}: {bound} applies to int and float columns, not {self.dtype}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise InvalidInput(f"{where}: {bound} must be a number, got {value!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidInput(f"{where}: min {self.min} is greater than max {self.max}")
        if self.categories is not None:
            if self.dtype != "category":
                raise InvalidInput(
                    f"{where}: categories apply to category columns, not {self.dtype}",
                    hint="set dtype: category",
                )
            if not isinstance(self.categories, list):
                raise InvalidInput(f"{where}: categories must be a list of strings")
            bad = [c for c in self.categories if not isinstance(c, str)]
            if bad:
                raise InvalidInput(
                    f"{where}: categories must be strings, got {bad[0]!r}",
                    hint="quote values YAML reads as numbers or booleans, e.g. '1' or 'yes'",
                )
            if len(set(self.categories)) != len(self.categories):
                dupes = sorted({c for c in self.categories if self.categories.count(c) > 1})
                raise InvalidInput(f"{where}: duplicate categories {dupes}")

    def to_dict(self) -> dict[str, Any]:
        """``{"dtype": ..., "nullable": ..., ...}`` without the keys that are ``None``."""
        out: dict[str, Any] = {"dtype": self.dtype, "nullable": self.nullable}
        for key in ("min", "max", "categories"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "categories" else value
        return out

    @classmethod
    def from_dict(cls, name: str, spec: Any) -> ColumnSchema:
        """Column ``name`` from its mapping; ``nullable`` defaults to false."""
        if not isinstance(name, str):
            raise InvalidInput(
                f"column names must be strings, got {name!r}",
                hint="quote the name in YAML, e.g. '2024': {dtype: int}",
            )
        if not isinstance(spec, dict):
            raise InvalidInput(
                f"schema column {name!r}: expected a mapping with a dtype, got {spec!r}",
                hint="e.g. {dtype: float, nullable: false}",
            )
        unknown = [k for k in spec if k not in _COLUMN_KEYS]
        if unknown:
            raise InvalidInput(
                f"schema column {name!r}: unknown key {unknown[0]!r}",
                hint=f"keys are {', '.join(_COLUMN_KEYS)}",
            )
        if "dtype" not in spec:
            raise InvalidInput(
                f"schema column {name!r}: dtype is missing", hint=f"one of {', '.join(DTYPES)}"
            )
        return cls(name=name, **spec)


@dataclass
class Schema:
    """The expected columns of a table, in order."""

    columns: list[ColumnSchema]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise InvalidInput(f"schema column {column.name!r} appears twice")
            seen.add(column.name)

    @property
    def names(self) -> list[str]:
        """Column names, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise InvalidInput(f"the schema has no column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"columns": {name: {...}}}``, the shape of the YAML file."""
        return {"columns": {c.name: c.to_dict() for c in self.columns}}

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """Read the shape :meth:`to_dict` writes; :class:`InvalidInput` names what is wrong."""
        if not isinstance(data, dict) or "columns" not in data:
            raise InvalidInput(
                "a schema is a mapping with a 'columns' key",
                hint="columns: {age: {dtype: int}}",
            )
        unknown = [k for k in data if k != "columns"]
        if unknown:
            raise InvalidInput(
                f"schema: unknown key {unknown[0]!r}", hint="the only key is columns"
            )
        columns = data["columns"]
        if columns is None:
            columns = {}
        if not isinstance(columns, dict):
            raise InvalidInput(
                "schema: 'columns' must map column names to their specs",
                hint="columns: {age: {dtype: int}}",
            )
        return cls([ColumnSchema.from_dict(name, spec) for name, spec in columns.items()])

    def to_yaml(self) -> str:
        """The schema as YAML, columns in order, one mapping per column."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> Schema:
        """Parse YAML text (not a path: pass ``Path(p).read_text()``)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e)
            raise InvalidInput(f"schema YAML is malformed{where}: {problem}") from e
        return cls.from_dict(data)


@dataclass
class Violation:
    """One way data departs from a schema.

    ``count`` is the number of offending values (0 for column-level kinds); ``examples`` holds
    up to 5 of them as ``{"row": position, "value": value}``, rows counted from 0.
    """

    kind: str
    column: str
    message: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "column": self.column,
            "message": self.message,
            "count": self.count,
            "examples": [dict(e) for e in self.examples],
        }


# --- inference --------------------------------------------------------------------------------


def infer_schema(data: Any, max_categories: int = 20) -> Schema:
    """Propose a schema for ``data``.

    - dtypes map from pandas/arrow types to :data:`DTYPES` (pandas categoricals and arrow
      dictionaries become ``category`` with their declared categories);
    - int and float columns get ``min``/``max`` from the data (NaN ignored);
    - ``nullable`` is true when the column has a null (or NaN);
    - a string column with at least one and at most ``max_categories`` distinct values, fewer
      than half the number of rows, becomes ``category`` with its values sorted;
    - a column with only nulls and no type (pandas object ``None``) becomes a nullable string.

    :class:`InvalidInput` for columns outside the vocabulary (lists, bytes, mixed types).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(max_categories, bool) or not isinstance(max_categories, int):
        raise InvalidInput(f"max_categories must be an integer, got {max_categories!r}")
    if max_categories < 0:
        raise InvalidInput(f"max_categories must be >= 0, got {max_categories}")
    frame = as_frame(data)
    table = frame.table
    columns: list[ColumnSchema] = []
    for name in frame.names:
        column = table.column(name)
        dtype = frame.dtype(name)
        nulls = count_true(missing_mask(column))
        if dtype == MIXED:
            kinds = sorted({type(v).__name__ for v in frame.mixed[name].dropna()})
            raise InvalidInput(
                f"column {name!r} mixes Python types ({', '.join(kinds)})",
                hint="convert it to one type, e.g. with pd.to_numeric or .astype(str)",
            )
        if pa.types.is_null(column.type):
            columns.append(ColumnSchema(name, "string", nullable=True))
            continue
        if dtype not in DTYPES:
            raise InvalidInput(
                f"column {name!r} has type {dtype}, which a schema cannot describe",
                hint=f"schemas describe {', '.join(DTYPES)} columns",
            )
        spec = ColumnSchema(name, dtype, nullable=nulls > 0)
        if dtype in ("int", "float"):
            present = column.filter(pc.invert(missing_mask(column)))
            if len(present):
                bounds = pc.min_max(present)
                low, high = bounds["min"].as_py(), bounds["max"].as_py()
                if dtype == "float":
                    low, high = float(low), float(high)
                spec.min, spec.max = low, high
        elif dtype == "category":
            spec.categories = _dictionary_categories(column)
        elif dtype == "string":
            distinct = pc.unique(column.drop_null())
            if 1 <= len(distinct) <= max_categories and len(distinct) < table.num_rows / 2:
                spec.dtype = "category"
                spec.categories = sorted(distinct.to_pylist())
        columns.append(spec)
    return Schema(columns)


def _dictionary_categories(column: Any) -> list[str]:
    """Declared categories of a dictionary column, in order, as strings."""
    import pyarrow as pa

    seen: dict[str, None] = {}
    for chunk in column.chunks:
        for value in chunk.dictionary.cast(pa.large_string()).to_pylist():
            if value is not None:
                seen.setdefault(value, None)
    return list(seen)


# --- validation -------------------------------------------------------------------------------


def validate(data: Any, schema: Schema) -> list[Violation]:
    """Every way ``data`` departs from ``schema``; an empty list when it conforms.

    Per schema column, in schema order: ``missing_column``; ``dtype`` (int data is accepted
    where float is expected, string where category is and the reverse; floats are not accepted
    as ints, nor numeric text as numbers); ``nulls`` (NaN counts as null) when not nullable;
    ``out_of_range`` against inclusive ``min``/``max``; ``unknown_category`` for values outside
    ``categories``. Then ``extra_column`` for data columns the schema does not name. Range and
    category checks are skipped for a column whose dtype is wrong.
    """
    import pyarrow.compute as pc

    if not isinstance(schema, Schema):
        raise InvalidInput(f"expected a Schema, got {type(schema).__name__}")
    frame = as_frame(data)
    table = frame.table
    present = set(frame.names)
    out: list[Violation] = []
    for spec in schema.columns:
        name = spec.name
        if name not in present:
            out.append(Violation("missing_column", name, f"column {name!r} is missing"))
            continue
        column = table.column(name)
        missing = missing_mask(column)
        observed = frame.dtype(name)
        dtype_ok = _dtype_ok(spec.dtype, observed, column)
        if not dtype_ok:
            out.append(_dtype_violation(frame, spec, observed, column, missing))
        if not spec.nullable:
            nulls = count_true(missing)
            if nulls:
                out.append(
                    Violation(
                        "nulls",
                        name,
                        f"column {name!r} has {nulls} null value(s) but is not nullable",
                        nulls,
                        example_rows(column, missing),
                    )
                )
        if not dtype_ok:
            continue
        if spec.dtype in ("int", "float") and (spec.min is not None or spec.max is not None):
            outside = None
            if spec.min is not None:
                outside = pc.less(column, spec.min)
            if spec.max is not None:
                above = pc.greater(column, spec.max)
                outside = above if outside is None else pc.or_kleene(outside, above)
            outside = pc.fill_null(outside, False)
            count = count_true(outside)
            if count:
                bounds = f"[{_fmt(spec.min, '-inf')}, {_fmt(spec.max, 'inf')}]"
                out.append(
                    Violation(
                        "out_of_range",
                        name,
                        f"column {name!r} has {count} value(s) outside {bounds}",
                        count,
                        example_rows(column, outside),
                    )
                )
        if spec.dtype == "category" and spec.categories is not None:
            import pyarrow as pa

            text = column.cast(pa.large_string())
            allowed = pa.array(spec.categories, type=pa.large_string())
            unknown = pc.and_(pc.invert(pc.is_in(text, value_set=allowed)), pc.is_valid(text))
            count = count_true(unknown)
            if count:
                values = pc.unique(text.filter(unknown)).to_pylist()
                listed = ", ".join(repr(v) for v in values[:MAX_EXAMPLES])
                more = ", …" if len(values) > MAX_EXAMPLES else ""
                out.append(
                    Violation(
                        "unknown_category",
                        name,
                        f"column {name!r} has {count} value(s) outside its categories: "
                        f"{listed}{more}",
                        count,
                        example_rows(text, unknown),
                    )
                )
    expected = set(schema.names)
    for name in frame.names:
        if name not in expected:
            out.append(
                Violation(
                    "extra_column",
                    name,
                    f"column {name!r} ({frame.dtype(name)}) is not in the schema",
                )
            )
    return out


def _fmt(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


def _dtype_ok(expected: str, observed: str, column: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_null(column.type):
        return True  # no values, so no value of the wrong type
    return observed == expected or observed in _ACCEPTS.get(expected, ())


_PYTHON_TYPES = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "category": lambda v: isinstance(v, str),
    "datetime": lambda v: hasattr(v, "isoformat") and hasattr(v, "year"),
}


def _dtype_violation(
    frame: Frame, spec: ColumnSchema, observed: str, column: Any, missing: Any
) -> Violation:
    """Which values do not have the expected dtype: all of them, or some of a mixed column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    name = spec.name
    if observed == MIXED:
        raw = frame.mixed[name]
        fits = _PYTHON_TYPES[spec.dtype]
        wrong = [
            not missing_value and not fits(_native(value))
            for value, missing_value in zip(raw.tolist(), missing.to_pylist(), strict=True)
        ]
        bad = pa.array(wrong, type=pa.bool_())
        count = count_true(bad)
        kinds = sorted({type(_native(v)).__name__ for v in raw.dropna()})
        message = (
            f"column {name!r} should be {spec.dtype} but mixes Python types "
            f"({', '.join(kinds)}): {count} value(s) are not {spec.dtype}"
        )
        return Violation("dtype", name, message, count, example_rows(column, bad, values=raw))
    bad = pc.invert(missing)
    count = count_true(bad)
    message = f"column {name!r} should be {spec.dtype} but is {observed}"
    if spec.dtype in ("int", "float") and observed in ("string", "category"):
        message += " (numbers stored as text? convert with pd.to_numeric)"
    elif spec.dtype == "int" and observed == "float":
        message += (
            " (pandas turns an int column with missing values into float64:"
            " use the nullable 'Int64' dtype)"
        )
    return Violation("dtype", name, message, count, example_rows(column, bad))


def _native(value: Any) -> Any:
    """numpy scalars as Python values, for type checks."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)) and hasattr(value, "dtype"):
        return value.item()
    return value
