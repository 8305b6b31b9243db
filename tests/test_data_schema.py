"""Schemas: inference, YAML round trip and hand edits, and validation reporting every violation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from triptych.data.schema import (
    DTYPES,
    VIOLATION_KINDS,
    ColumnSchema,
    Schema,
    Violation,
    infer_schema,
    validate,
)
from triptych.errors import InvalidInput


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [25, 40, 31, 58, 19, 33],
            "income": [30_000.5, np.nan, 52_000.0, 75_000.0, 12_000.0, 41_000.0],
            "member": [True, False, True, True, False, True],
            "city": ["Paris", "Lyon", "Paris", "Paris", "Lyon", "Paris"],
            "name": ["ann", "bob", "cy", "dee", "eve", "fay"],
            "plan": pd.Categorical(["a", "b", "a", None, "a", "b"], categories=["b", "a", "c"]),
            "seen": pd.to_datetime(["2024-01-01"] * 5 + [None]),
        }
    )


def kinds(violations: list[Violation]) -> list[tuple[str, str]]:
    return [(v.kind, v.column) for v in violations]


# --- inference --------------------------------------------------------------------------------


def test_infer_maps_dtypes_ranges_nulls_and_categories(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    assert schema.names == list(frame.columns)
    assert [c.dtype for c in schema.columns] == [
        "int",
        "float",
        "bool",
        "category",  # 2 distinct values in 6 rows
        "string",  # 6 distinct values in 6 rows
        "category",
        "datetime",
    ]
    age, income = schema.column("age"), schema.column("income")
    assert (age.min, age.max, age.nullable) == (19, 58, False)
    assert isinstance(age.min, int)
    assert (income.min, income.max, income.nullable) == (12_000.0, 75_000.0, True)  # NaN skipped
    assert schema.column("city").categories == ["Lyon", "Paris"]  # sorted
    assert schema.column("plan").categories == ["b", "a", "c"]  # pandas' declared categories
    assert schema.column("plan").nullable
    assert schema.column("seen").nullable
    assert schema.column("name").categories is None
    assert schema.column("member").min is None


def test_infer_category_thresholds() -> None:
    data = pd.DataFrame({"s": ["a", "b", "c", "a", "b", "c", "a", "b"]})
    assert infer_schema(data).column("s").dtype == "category"
    assert infer_schema(data, max_categories=3).column("s").dtype == "category"
    assert infer_schema(data, max_categories=2).column("s").dtype == "string"
    # 3 distinct values are not fewer than half of 6 rows
    assert infer_schema(data.head(6)).column("s").dtype == "string"


def test_infer_from_arrow_matches_pandas(frame: pd.DataFrame) -> None:
    assert infer_schema(pa.Table.from_pandas(frame, preserve_index=False)) == infer_schema(frame)


def test_inferred_schema_accepts_its_data(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    assert validate(frame, schema) == []
    assert validate(pa.Table.from_pandas(frame), schema) == []


def test_infer_refuses_mixed_types_naming_the_column() -> None:
    with pytest.raises(InvalidInput, match="'x' mixes Python types"):
        infer_schema(pd.DataFrame({"x": [1.0, "2.5", 3.0]}))


def test_only_dataframes_and_tables() -> None:
    with pytest.raises(InvalidInput, match="pandas DataFrame or a pyarrow Table"):
        infer_schema([{"a": 1}])


# --- validation -------------------------------------------------------------------------------


def test_validate_reports_every_violation_kind_at_once() -> None:
    schema = Schema(
        [
            ColumnSchema("age", "int", min=0, max=120),
            ColumnSchema("score", "float", nullable=False),
            ColumnSchema("city", "category", nullable=True, categories=["Lyon", "Paris"]),
            ColumnSchema("zip", "string"),
            ColumnSchema("price", "float"),
        ]
    )
    data = pd.DataFrame(
        {
            "age": [30, -1, 150, 40, 200],
            "score": [0.5, None, np.nan, 1.0, 2.0],
            "city": ["Paris", "Nice", "Lyon", "Brest", None],
            "price": ["1.5", "2", "3", None, "4"],
            "extra": [1, 2, 3, 4, 5],
        }
    )
    violations = validate(data, schema)
    assert kinds(violations) == [
        ("out_of_range", "age"),
        ("nulls", "score"),
        ("unknown_category", "city"),
        ("missing_column", "zip"),
        ("dtype", "price"),
        ("nulls", "price"),
        ("extra_column", "extra"),
    ]
    assert {v.kind for v in violations} == set(VIOLATION_KINDS)
    by_kind = {(v.kind, v.column): v for v in violations}

    out = by_kind[("out_of_range", "age")]
    assert out.count == 3
    assert out.examples == [
        {"row": 1, "value": -1},
        {"row": 2, "value": 150},
        {"row": 4, "value": 200},
    ]
    nulls = by_kind[("nulls", "score")]
    assert nulls.count == 2  # None and NaN
    assert [e["row"] for e in nulls.examples] == [1, 2]
    unknown = by_kind[("unknown_category", "city")]
    assert unknown.count == 2
    assert "'Nice'" in unknown.message and "'Brest'" in unknown.message
    assert unknown.examples == [{"row": 1, "value": "Nice"}, {"row": 3, "value": "Brest"}]
    numeric_text = by_kind[("dtype", "price")]
    assert numeric_text.count == 4
    assert "should be float but is string" in numeric_text.message
    assert numeric_text.examples[0] == {"row": 0, "value": "1.5"}
    assert by_kind[("missing_column", "zip")].count == 0


def test_ints_are_floats_but_floats_are_not_ints() -> None:
    ints = pd.DataFrame({"x": [1, 2, 3]})
    floats = pd.DataFrame({"x": [1.0, 2.0, np.nan]})
    as_float = Schema([ColumnSchema("x", "float", nullable=True, min=0.5, max=2.5)])
    as_int = Schema([ColumnSchema("x", "int", nullable=True)])
    assert kinds(validate(ints, as_float)) == [("out_of_range", "x")]  # 3 > 2.5, no dtype error
    assert validate(ints, as_int) == []
    [violation] = validate(floats, as_int)
    assert (violation.kind, violation.count) == ("dtype", 2)
    assert "Int64" in violation.message  # the usual pandas cause, and its fix
    assert validate(floats.astype("Int64"), as_int) == []


def test_mixed_object_column_points_at_the_odd_values() -> None:
    data = pd.DataFrame({"x": [1.0, "2.5", 3, None, "n/a", 7.5]})
    schema = Schema([ColumnSchema("x", "float", nullable=True)])
    [violation] = validate(data, schema)
    assert violation.kind == "dtype"
    assert violation.count == 2
    assert violation.examples == [{"row": 1, "value": "2.5"}, {"row": 4, "value": "n/a"}]


def test_examples_are_capped_and_use_positions_not_the_index() -> None:
    data = pd.DataFrame({"x": np.arange(100) - 50}, index=np.arange(100) * 10)
    [violation] = validate(data, Schema([ColumnSchema("x", "int", min=0)]))
    assert violation.count == 50
    assert [e["row"] for e in violation.examples] == [0, 1, 2, 3, 4]
    assert [e["value"] for e in violation.examples] == [-50, -49, -48, -47, -46]


def test_strings_and_categories_accept_each_other() -> None:
    as_category = Schema([ColumnSchema("c", "category", categories=["a", "b"])])
    assert validate(pd.DataFrame({"c": ["a", "b"]}), as_category) == []
    as_string = Schema([ColumnSchema("c", "string")])
    assert validate(pd.DataFrame({"c": pd.Categorical(["a", "b"])}), as_string) == []
    assert kinds(validate(pd.DataFrame({"c": [1, 2]}), as_string)) == [("dtype", "c")]


def test_violations_are_json_ready() -> None:
    schema = Schema([ColumnSchema("t", "datetime"), ColumnSchema("x", "int", max=1)])
    data = pd.DataFrame({"t": pd.to_datetime(["2024-05-01", None]), "x": [1, 5]})
    payload = json.loads(json.dumps([v.to_dict() for v in validate(data, schema)], allow_nan=False))
    assert payload[0]["kind"] == "nulls"
    assert payload[1] == {
        "kind": "out_of_range",
        "column": "x",
        "message": "column 'x' has 1 value(s) outside [-inf, 1]",
        "count": 1,
        "examples": [{"row": 1, "value": 5}],
    }


def test_validate_works_on_arrow_tables() -> None:
    table = pa.table({"x": pa.array([1.0, None, float("nan"), 9.0])})
    schema = Schema([ColumnSchema("x", "float", max=5)])
    violations = validate(table, schema)
    assert [(v.kind, v.count) for v in violations] == [("nulls", 2), ("out_of_range", 1)]


# --- dict and YAML ----------------------------------------------------------------------------


def test_yaml_round_trip_and_shape(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    text = schema.to_yaml()
    assert Schema.from_yaml(text) == schema
    assert Schema.from_dict(schema.to_dict()) == schema
    import yaml

    raw = yaml.safe_load(text)
    assert list(raw) == ["columns"]
    assert list(raw["columns"]) == list(frame.columns)  # order kept
    assert raw["columns"]["age"] == {"dtype": "int", "nullable": False, "min": 19, "max": 58}
    assert raw["columns"]["name"] == {"dtype": "string", "nullable": False}  # None keys omitted
    assert raw["columns"]["city"]["categories"] == ["Lyon", "Paris"]


def test_hand_edited_yaml_changes_what_validates(frame: pd.DataFrame) -> None:
    text = """
columns:
  age: {dtype: int, min: 21}       # nullable defaults to false
  city:
    dtype: category
    categories: [Paris]
  'yes':                            # quoted: YAML reads a bare yes as true
    dtype: bool
    nullable: true
"""
    schema = Schema.from_yaml(text)
    assert schema.column("age") == ColumnSchema("age", "int", nullable=False, min=21)
    violations = validate(frame[["age", "city"]], schema)
    assert kinds(violations) == [
        ("out_of_range", "age"),
        ("unknown_category", "city"),
        ("missing_column", "yes"),
    ]
    assert Schema.from_yaml(schema.to_yaml()) == schema


def test_awkward_names_and_categories_survive_yaml() -> None:
    schema = Schema(
        [
            ColumnSchema("no", "category", categories=["yes", "1", "null", "a: b", "é"]),
            ColumnSchema("2024", "float", min=-1.5, max=float("inf")),
        ]
    )
    assert Schema.from_yaml(schema.to_yaml()) == schema


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns: {a: {dtype: int}", r"malformed at line \d+"),
        ("- a\n- b", "mapping with a 'columns' key"),
        ("columns: [a, b]", "must map column names"),
        ("columns: {a: {dtype: integer}}", "'a': unknown dtype 'integer'"),
        ("columns: {a: {dtype: int, nulable: true}}", "'a': unknown key 'nulable'"),
        ("columns: {a: {nullable: true}}", "'a': dtype is missing"),
        ("columns: {a: int}", "'a': expected a mapping"),
        ("columns: {a: {dtype: int, min: 5, max: 1}}", "'a': min 5 is greater than max 1"),
        ("columns: {a: {dtype: int, min: ten}}", "'a': min must be a number"),
        ("columns: {a: {dtype: string, min: 1}}", "'a': min applies to int and float"),
        ("columns: {a: {dtype: string, categories: [x]}}", "'a': categories apply to category"),
        ("columns: {a: {dtype: category, categories: [x, 1]}}", "'a': categories must be strings"),
        ("columns: {a: {dtype: category, categories: [x, x]}}", "'a': duplicate categories"),
        ("columns: {a: {dtype: bool, nullable: maybe}}", "'a': nullable must be true or false"),
        ("columns: {1: {dtype: int}}", "column names must be strings"),
        ("columns: {}\nversion: 2", "unknown key 'version'"),
    ],
)
def test_bad_yaml_names_the_problem(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Schema.from_yaml(text)


def test_duplicate_columns_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'a' appears twice"):
        Schema([ColumnSchema("a", "int"), ColumnSchema("a", "float")])
    with pytest.raises(InvalidInput, match="duplicate column names"):
        validate(pd.DataFrame([[1, 2]], columns=["a", "a"]), Schema([]))


def test_vocabulary() -> None:
    assert DTYPES == ("int", "float", "bool", "string", "category", "datetime")
    assert VIOLATION_KINDS == (
        "missing_column",
        "extra_column",
        "dtype",
        "nulls",
        "out_of_range",
        "unknown_category",
    )
