"""Signatures: the columns a model takes and what it returns, and the check of new input.

Dtypes come from a small vocabulary (:data:`DTYPES`): ``int``, ``float``, ``bool``,
``string``, ``category``, ``datetime``. An input column whose dtype is unknown (``None``, e.g.
when the signature was read off a fitted estimator, which records names but not types) is
checked for presence only.

Input is checked strictly: a missing column or a value of the wrong type is an error naming
the column; extra columns are dropped with a :class:`TriptychWarning`; columns are put in the
signature's order. Ints are accepted where floats are expected (and converted), never the
reverse.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from triptych.errors import InvalidInput, TriptychWarning

DTYPES = ("int", "float", "bool", "string", "category", "datetime")

# What a column of each observed kind may feed: expected dtype -> accepted observed kinds.
_ACCEPTS: dict[str, frozenset[str]] = {
    "int": frozenset({"int"}),
    "float": frozenset({"float", "int"}),
    "bool": frozenset({"bool"}),
    "string": frozenset({"string", "category"}),
    "category": frozenset({"category", "string"}),
    "datetime": frozenset({"datetime"}),
}
_INFERRED = {
    "string": "string",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One named column; ``dtype`` None: any type."""

    name: str
    dtype: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@dataclass(frozen=True)
class OutputSpec:
    """What predict returns: an array (``shape``, -1 for the rows) or a table (``columns``)."""

    dtype: str | None
    shape: tuple[int, ...] | None = None
    columns: tuple[ColumnSpec, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype}
        if self.columns is not None:
            out["columns"] = [c.to_dict() for c in self.columns]
        else:
            out["shape"] = list(self.shape) if self.shape is not None else None
        return out


@dataclass(frozen=True)
class Signature:
    """Inputs in order, and the output (None when unknown)."""

    inputs: tuple[ColumnSpec, ...]
    output: OutputSpec | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "output": self.output.to_dict() if self.output else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Parse and check ``{"inputs": [{name, dtype}, ...], "output": {...}}``."""
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), Sequence):
            raise InvalidInput(
                "a signature needs 'inputs': a list of {name, dtype}",
                hint='e.g. {"inputs": [{"name": "age", "dtype": "int"}], "output": null}',
            )
        inputs = tuple(_column(c, "input") for c in data["inputs"])
        names = [c.name for c in inputs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidInput(f"signature lists column(s) twice: {_names(twice)}")
        raw_out = data.get("output")
        output = None
        if raw_out is not None:
            if not isinstance(raw_out, Mapping):
                raise InvalidInput("a signature's 'output' must be an object or null")
            columns = raw_out.get("columns")
            shape = raw_out.get("shape")
            output = OutputSpec(
                dtype=_dtype(raw_out.get("dtype"), "output"),
                shape=tuple(int(n) for n in shape) if shape is not None else None,
                columns=tuple(_column(c, "output") for c in columns)
                if columns is not None
                else None,
            )
        return cls(inputs, output)


def _column(item: Any, where: str) -> ColumnSpec:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
        raise InvalidInput(f"each signature {where} needs a non-empty 'name', got {item!r}")
    return ColumnSpec(item["name"], _dtype(item.get("dtype"), f"column {item['name']!r}"))


def _dtype(value: Any, where: str) -> str | None:
    if value is None or value in DTYPES:
        return value
    raise InvalidInput(
        f"unknown dtype {value!r} for {where}", hint=f"use one of {', '.join(DTYPES)}"
    )


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def as_signature(value: Signature | Mapping[str, Any]) -> Signature:
    if isinstance(value, Signature):
        return Signature.from_dict(value.to_dict())  # the same checks either way
    return Signature.from_dict(value)


# -- observing data -----------------------------------------------------------------------------
def to_frame(data: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a dict of lists (or one record as a dict of scalars), a
    list of records, or a 2-D array (its columns named ``names``, else ``"0"``, ``"1"``…)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        if all(np.ndim(v) == 0 for v in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame({str(k): v for k, v in data.items()})
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame.from_records(list(data))
    if isinstance(data, (np.ndarray, list, tuple)):
        array = np.asarray(data)
        if array.ndim != 2:
            raise InvalidInput(
                f"expected a table, got an array of shape {array.shape}",
                hint="pass a DataFrame, a dict of lists, a list of records or a 2-D array",
            )
        if names is not None and len(names) != array.shape[1]:
            raise InvalidInput(
                f"the model takes {len(names)} columns ({_names(names)}); "
                f"the array has {array.shape[1]}",
                hint="pass a DataFrame with named columns",
            )
        labels = list(names) if names is not None else [str(i) for i in range(array.shape[1])]
        return pd.DataFrame(array, columns=labels)
    raise InvalidInput(
        f"cannot read a table from {type(data).__name__}",
        hint="pass a DataFrame, a dict of lists, a list of records or a 2-D array",
    )


def kind_of(column: pd.Series) -> str:
    """The vocabulary kind of a column's values (``"empty"`` when all are missing; anything
    else outside :data:`DTYPES` describes what was found)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        if inferred == "empty":
            return "empty"
        return _INFERRED.get(inferred, f"mixed ({inferred})")
    return str(dtype)


def _array_kind(values: np.ndarray) -> str | None:
    kind = values.dtype.kind
    return {"b": "bool", "i": "int", "u": "int", "f": "float", "M": "datetime", "U": "string"}.get(
        kind, kind_of(pd.Series(values.ravel())) if kind == "O" else None
    )


# -- inferring ----------------------------------------------------------------------------------
def infer_inputs(example: pd.DataFrame) -> tuple[ColumnSpec, ...]:
    """Input columns and dtypes read off an example table."""
    specs = []
    for name in example.columns:
        kind = kind_of(example[name])
        if kind == "empty":
            specs.append(ColumnSpec(str(name), None))
        elif kind in DTYPES:
            specs.append(ColumnSpec(str(name), kind))
        else:
            raise InvalidInput(
                f"column {name!r} of the input example holds {kind} values",
                hint=f"signatures know {', '.join(DTYPES)}; convert the column or pass "
                "signature= explicitly",
            )
    return tuple(specs)


def infer_output(prediction: Any) -> OutputSpec:
    """The output spec of what predict returned."""
    if isinstance(prediction, pd.DataFrame):
        cols = infer_inputs(prediction)
        kinds = {c.dtype for c in cols}
        return OutputSpec(dtype=kinds.pop() if len(kinds) == 1 else None, columns=cols)
    if isinstance(prediction, pd.Series):
        prediction = prediction.to_numpy()
    values = np.asarray(prediction)
    return OutputSpec(dtype=_array_kind(values), shape=(-1, *values.shape[1:]))


def estimator_inputs(model: Any) -> tuple[ColumnSpec, ...] | None:
    """Input columns a fitted scikit-learn estimator records: names from
    ``feature_names_in_`` (else ``"0"``… from ``n_features_in_``); dtypes are not recorded."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return tuple(ColumnSpec(str(n), None) for n in names)
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, (int, np.integer)):
        return tuple(ColumnSpec(str(i), None) for i in range(int(count)))
    return None


def infer_signature(model: Any, input_example: Any = None) -> Signature | None:
    """A signature from ``input_example`` (output by calling ``model.predict`` on it), else
    from the fitted estimator; None when neither says anything."""
    if input_example is None:
        inputs = estimator_inputs(model)
        return Signature(inputs) if inputs is not None else None
    known = getattr(model, "feature_names_in_", None)
    frame = to_frame(input_example, [str(n) for n in known] if known is not None else None)
    if known is not None:
        missing = [str(n) for n in known if str(n) not in frame.columns]
        if missing:
            raise InvalidInput(
                f"the input example lacks column(s) the model was fitted on: {_names(missing)}"
            )
        frame = frame[[str(n) for n in known]]  # only what the model uses, in its order
    else:
        count = getattr(model, "n_features_in_", None)
        if isinstance(count, (int, np.integer)) and count != frame.shape[1]:
            raise InvalidInput(
                f"the model was fitted on {count} columns; the input example has {frame.shape[1]}"
            )
    signature = Signature(infer_inputs(frame))
    prediction = predict_checked(model, signature, frame)
    return Signature(signature.inputs, infer_output(prediction))


def predict_checked(model: Any, signature: Signature, frame: pd.DataFrame) -> Any:
    """``model.predict`` on ``frame`` once it passed the signature; errors become InvalidInput."""
    prepared = prepare(frame, signature)
    try:
        return model.predict(model_input(model, prepared))
    except Exception as e:
        raise InvalidInput(
            f"predict failed on the input example: {type(e).__name__}: {e}",
            hint="pass an example the fitted model accepts",
        ) from e


# -- checking input -----------------------------------------------------------------------------
def prepare(data: Any, signature: Signature, *, stacklevel: int = 3) -> pd.DataFrame:
    """``data`` as a DataFrame with exactly the signature's columns, in its order, checked."""
    names = signature.names
    frame = to_frame(data, names)
    columns = [str(c) for c in frame.columns]
    if columns != list(frame.columns):
        frame = frame.set_axis(columns, axis=1)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInput(
            f"input is missing column(s) {_names(missing)}",
            hint=f"the model takes: {_describe(signature)}",
        )
    extra = [c for c in columns if c not in set(names)]
    if extra:
        warnings.warn(
            f"ignoring column(s) not in the model's signature: {_names(extra)}",
            TriptychWarning,
            stacklevel=stacklevel,
        )
    frame = frame[names]
    wrong = []
    converted: dict[str, Any] = {}
    for spec in signature.inputs:
        if spec.dtype is None:
            continue
        column = frame[spec.name]
        kind = kind_of(column)
        if kind == "empty":
            continue
        if kind not in _ACCEPTS[spec.dtype]:
            wrong.append(f"{spec.name!r} should be {spec.dtype} but holds {kind} values")
        elif spec.dtype == "float" and kind == "int":
            converted[spec.name] = column.astype("float64")
        elif spec.dtype == "category" and kind == "string":
            converted[spec.name] = column.astype("category")
    if wrong:
        raise InvalidInput(
            f"input column{'s' if len(wrong) > 1 else ''} of the wrong type: {'; '.join(wrong)}",
            hint=f"the model takes: {_describe(signature)}",
        )
    if converted:
        frame = frame.assign(**converted)
    return frame


def model_input(model: Any, frame: pd.DataFrame) -> Any:
    """What the estimator is given: the DataFrame when it was fitted with column names, the
    bare array otherwise (scikit-learn warns when names appear that it never saw)."""
    if getattr(model, "feature_names_in_", None) is not None:
        return frame
    if hasattr(model, "n_features_in_"):
        return frame.to_numpy()
    return frame


def _describe(signature: Signature) -> str:
    return ", ".join(f"{c.name} ({c.dtype or 'any'})" for c in signature.inputs)
