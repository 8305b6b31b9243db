"""Request bodies: the three JSON forms, checked against the model's columns.

Accepted bodies (values are JSON scalars):

- ``{"records": [{"age": 0.03, ...}, ...]}``
- ``{"columns": ["age", ...], "data": [[0.03, ...], ...]}``
- ``{"data": [[0.03, ...], ...]}`` (columns in the model's order)

Every problem is reported with where it is (``loc``), so a client can fix all of them at
once. For all-numeric models the rows go into one float64 numpy array: numpy decides in C
whether every value is a number, and only a body that fails that check is walked cell by
cell to say which value is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from triptych.errors import InvalidInput

MAX_ERRORS = 50  # per-field errors reported in one answer
NUMERIC = frozenset({"int", "float"})
JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "string": "string",
    "category": "string",
    "datetime": "string",
}


class BadRequest(InvalidInput):
    """A request body the server refuses: ``status`` (400 or 422) and per-field ``errors``."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


def _error(loc: Sequence[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


@dataclass(frozen=True)
class Columns:
    """The input columns a served model takes, compiled once for fast checks."""

    names: tuple[str, ...]
    dtypes: tuple[str | None, ...]
    allow_missing: bool = False  # the model accepts NaN: null becomes NaN
    numeric: bool = field(init=False, compare=False)  # all int/float: one float64 array
    has_int: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", all(d in NUMERIC for d in self.dtypes))
        object.__setattr__(self, "has_int", "int" in self.dtypes)


@dataclass
class Rows:
    """The checked rows of one request: ``matrix`` (numeric models) or ``frame``."""

    n: int
    matrix: np.ndarray | None = None
    frame: Any = None  # pandas.DataFrame for models with non-numeric columns
    _records: list[dict[str, Any]] | None = None
    _lists: list[list[Any]] | None = None
    _names: tuple[str, ...] = ()

    def records(self) -> list[dict[str, Any]]:
        """The rows as records (JSON-able), for the prediction log; built on demand."""
        if self._records is None:
            names = self._names
            self._records = [dict(zip(names, row, strict=True)) for row in (self._lists or [])]
        return self._records


def parse(body: bytes, columns: Columns) -> Rows:
    """Checked rows from a request body; BadRequest (400 malformed, 422 invalid) otherwise."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(
            400, "malformed JSON", [_error(["body"], f"malformed JSON: {e}", "json_invalid")]
        ) from None
    if not isinstance(doc, dict):
        raise _shape_error(f"the body is a JSON {_json_type(doc)}")
    if "records" in doc:
        return _from_records(doc["records"], columns, body)
    if "data" in doc:
        return _from_data(doc["data"], doc.get("columns"), columns, body)
    raise _shape_error("the body has neither 'records' nor 'data'")


def _shape_error(what: str) -> BadRequest:
    msg = (
        f"{what}; send {{'records': [{{...}}]}}, {{'columns': [...], 'data': [[...]]}} "
        "or {'data': [[...]]}"
    )
    return BadRequest(422, "invalid input", [_error(["body"], msg, "body_shape")])


def _from_records(records: Any, columns: Columns, body: bytes) -> Rows:
    if not isinstance(records, list) or not records:
        raise BadRequest(
            422,
            "invalid input",
            [_error(["records"], "'records' must be a non-empty list of objects", "type")],
        )
    names = columns.names
    try:
        lists = [[r[n] for n in names] for r in records]
    except (KeyError, TypeError):
        errors = []
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                errors.append(_error(["records", i], "each record must be an object", "type"))
                continue
            errors += [
                _error(["records", i, n], f"missing column {n!r}", "missing")
                for n in names
                if n not in r
            ]
        raise _many(errors) from None
    return _checked(lists, columns, body, lambda i, j: ["records", i, names[j]])


def _from_data(data: Any, given: Any, columns: Columns, body: bytes) -> Rows:
    if not isinstance(data, list) or not data:
        raise BadRequest(
            422,
            "invalid input",
            [_error(["data"], "'data' must be a non-empty list of rows (lists)", "type")],
        )
    names = columns.names
    lists: list[Any] = data
    if given is not None:
        if not isinstance(given, list) or not all(isinstance(c, str) for c in given):
            raise _many([_error(["columns"], "'columns' must be a list of strings", "type")])
        if tuple(given) != names:
            missing = [n for n in names if n not in given]
            if missing:
                raise _many(
                    [_error(["columns"], f"missing column {n!r}", "missing") for n in missing]
                )
            twice = sorted({c for c in given if given.count(c) > 1})
            if twice:
                raise _many([_error(["columns"], f"column {twice[0]!r} given twice", "value")])
            width = len(given)
            bad = [
                i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != width
            ]
            if bad:
                raise _many([_row_length(i, width) for i in bad])
            where = [given.index(n) for n in names]
            lists = [[row[j] for j in where] for row in data]

    def loc(i: int, j: int) -> list[Any]:
        return ["data", i, names[j]]

    return _checked(lists, columns, body, loc)


def _row_length(i: int, width: int) -> dict[str, Any]:
    return _error(["data", i], f"each row must be a list of {width} values", "row_length")


def _many(errors: list[dict[str, Any]]) -> BadRequest:
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        errors = [*errors[:MAX_ERRORS], _error([], f"... and {more} more errors", "truncated")]
    return BadRequest(422, "invalid input", errors)


def _checked(lists: list[Any], columns: Columns, body: bytes, loc: Any) -> Rows:
    if columns.numeric:
        matrix = _fast_matrix(lists, columns, body)
        if matrix is None:
            matrix = _slow_matrix(lists, columns, loc)
        return Rows(len(lists), matrix=matrix, _lists=lists, _names=columns.names)
    return Rows(len(lists), frame=_frame(lists, columns, loc), _lists=lists, _names=columns.names)


def _fast_matrix(lists: list[Any], columns: Columns, body: bytes) -> np.ndarray | None:
    """The rows as float64 when numpy alone can tell they are all numbers, else None."""
    if b"true" in body or b"false" in body:  # numpy would read booleans as 1.0 and 0.0
        return None
    try:
        array = np.array(lists)
    except (ValueError, TypeError):  # ragged rows
        return None
    if array.ndim != 2 or array.shape[1] != len(columns.names):
        return None
    kind = array.dtype.kind
    if kind == "f":
        if columns.has_int or not np.isfinite(array).all():
            return None  # say which int column holds a float, or which value overflowed
        return array
    if kind in "iu":
        return array.astype(np.float64)
    return None


def _slow_matrix(lists: list[Any], columns: Columns, loc: Any) -> np.ndarray:
    """Walk the cells to name every wrong one; returns the matrix when none is."""
    width = len(columns.names)
    dtypes = columns.dtypes
    errors: list[dict[str, Any]] = []
    out = np.empty((len(lists), width), dtype=np.float64)
    for i, row in enumerate(lists):
        if not isinstance(row, list) or len(row) != width:
            errors.append(_row_length(i, width))
            continue
        for j, value in enumerate(row):
            problem = _numeric_problem(value, dtypes[j], columns.allow_missing)
            if problem:
                errors.append(_error(loc(i, j), *problem))
            elif not errors:
                out[i, j] = np.nan if value is None else value
        if len(errors) > MAX_ERRORS:
            break
    if errors:
        raise _many(errors)
    return out


def _numeric_problem(value: Any, dtype: str | None, allow_missing: bool) -> tuple[str, str] | None:
    t = type(value)
    if t is float:
        if dtype == "int":
            return f"expected an integer, got {value!r}", "type"
        if value != value or value in (float("inf"), float("-inf")):
            return "expected a finite number", "value"
        return None
    if t is int:
        return None
    if value is None:
        return None if allow_missing else ("null is not allowed: this model needs a value", "null")
    return (
        f"expected {'an integer' if dtype == 'int' else 'a number'}, got {_json_type(value)}",
        "type",
    )


_ACCEPTS: dict[str | None, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "string": (str,),
    "category": (str,),
    "datetime": (str,),
    None: (int, float, bool, str),
}


def _frame(lists: list[Any], columns: Columns, loc: Any) -> Any:
    """A DataFrame for models with non-numeric columns, every cell checked first."""
    import pandas as pd

    width = len(columns.names)
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(lists):
        if not isinstance(row, list) or len(row) != width:
            errors.append(_row_length(i, width))
            continue
        for j, value in enumerate(row):
            dtype = columns.dtypes[j]
            if value is None:
                if not columns.allow_missing:
                    errors.append(_error(loc(i, j), "null is not allowed", "null"))
            elif not isinstance(value, _ACCEPTS[dtype]) or (
                type(value) is bool and dtype not in ("bool", None)
            ):
                want = JSON_TYPES.get(dtype or "", "a scalar")
                errors.append(
                    _error(loc(i, j), f"expected {want}, got {_json_type(value)}", "type")
                )
            elif type(value) is float and not math.isfinite(value):
                errors.append(_error(loc(i, j), "expected a finite number", "value"))
    if errors:
        raise _many(errors)
    data: dict[str, Any] = {}
    for j, (name, dtype) in enumerate(zip(columns.names, columns.dtypes, strict=True)):
        values = [row[j] for row in lists]
        if dtype == "float":
            data[name] = pd.array(values, dtype="float64")
        elif dtype == "datetime":
            try:
                data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
            except (ValueError, TypeError) as e:
                raise _many([_error([name], f"not a date-time: {e}", "value")]) from None
        elif dtype == "category":
            data[name] = pd.Categorical(values)
        else:
            data[name] = values
    return pd.DataFrame(data, columns=list(columns.names))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)
