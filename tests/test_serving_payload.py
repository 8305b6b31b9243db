"""Request bodies: the three forms agree, and every bad value is named where it is."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from triptych.serving.payload import BadRequest, Columns, parse

NUMERIC = Columns(("a", "b"), ("float", "float"))
WITH_INT = Columns(("n", "x"), ("int", "float"))
MIXED = Columns(("city", "size", "when"), ("string", "float", "datetime"))


def _parse(doc: Any, columns: Columns = NUMERIC) -> Any:
    return parse(orjson.dumps(doc), columns)


def _errors(doc: Any, columns: Columns = NUMERIC) -> list[dict[str, Any]]:
    with pytest.raises(BadRequest) as caught:
        _parse(doc, columns)
    assert caught.value.status == 422
    return caught.value.errors


def test_three_forms_give_the_same_matrix_in_model_order() -> None:
    forms = [
        {"records": [{"b": 2, "a": 1.5, "extra": "ignored"}, {"a": 3, "b": 4.25}]},
        {"columns": ["b", "a"], "data": [[2, 1.5], [4.25, 3]]},
        {"columns": ["a", "b"], "data": [[1.5, 2], [3, 4.25]]},
        {"data": [[1.5, 2], [3, 4.25]]},
    ]
    for doc in forms:
        rows = _parse(doc)
        assert rows.matrix.dtype == np.float64
        assert rows.matrix.tolist() == [[1.5, 2.0], [3.0, 4.25]]
        assert rows.records() == [{"a": 1.5, "b": 2}, {"a": 3, "b": 4.25}]


def test_booleans_strings_nulls_and_lists_are_not_numbers() -> None:
    errors = _errors({"data": [[True, 1.0], ["1.5", None], [[1], 2]]})
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["data", 0, "a"], "type"),
        (["data", 1, "a"], "type"),
        (["data", 1, "b"], "null"),
        (["data", 2, "a"], "type"),
    ]
    assert errors[1]["msg"] == "expected a number, got string"


def test_int_columns_refuse_floats_but_float_columns_take_ints() -> None:
    assert _parse({"data": [[1, 2]]}, WITH_INT).matrix.tolist() == [[1.0, 2.0]]
    errors = _errors({"data": [[1.5, 2.0]]}, WITH_INT)
    assert [(e["loc"], e["type"]) for e in errors] == [(["data", 0, "n"], "type")]


def test_null_becomes_nan_when_the_model_accepts_missing_values() -> None:
    columns = Columns(("a", "b"), ("float", "float"), allow_missing=True)
    matrix = _parse({"data": [[None, 1.0]]}, columns).matrix
    assert np.isnan(matrix[0, 0]) and matrix[0, 1] == 1.0


def test_huge_numbers_are_refused_not_turned_into_infinity() -> None:
    with pytest.raises(BadRequest) as caught:
        parse(b'{"data": [[1e999, 1.0]]}', NUMERIC)
    assert caught.value.status in (400, 422)


def test_rows_of_the_wrong_length_and_missing_columns() -> None:
    errors = _errors({"data": [[1.0, 2.0], [1.0], [1.0, 2.0, 3.0]]})
    assert [e["loc"] for e in errors] == [["data", 1], ["data", 2]]
    errors = _errors({"records": [{"a": 1.0}, {"b": 1.0}, 3]})
    assert [e["loc"] for e in errors] == [["records", 0, "b"], ["records", 1, "a"], ["records", 2]]
    errors = _errors({"columns": ["a", "a", "b"], "data": [[1, 1, 1]]})
    assert errors[0]["loc"] == ["columns"]


def test_errors_are_capped() -> None:
    errors = _errors({"data": [["x", "y"]] * 100})
    assert len(errors) == 51
    assert errors[-1]["type"] == "truncated"


def test_malformed_json_is_400() -> None:
    with pytest.raises(BadRequest) as caught:
        parse(b'{"data": [[1, 2]', NUMERIC)
    assert caught.value.status == 400


def test_non_numeric_models_get_a_checked_frame() -> None:
    rows = _parse({"records": [{"city": "rome", "size": 2, "when": "2026-11-28T10:00:00Z"}]}, MIXED)
    frame = rows.frame
    assert list(frame.columns) == ["city", "size", "when"]
    assert frame["size"].dtype == np.float64
    assert str(frame["when"].dtype).startswith("datetime64")
    errors = _errors({"records": [{"city": 3, "size": "big", "when": None}]}, MIXED)
    assert [(e["loc"][-1], e["type"]) for e in errors] == [
        ("city", "type"),
        ("size", "type"),
        ("when", "null"),
    ]
    errors = _errors({"records": [{"city": "x", "size": 1.0, "when": "not a date"}]}, MIXED)
    assert errors[0]["loc"] == ["when"]
