"""Data checks give structured verdicts: schema, missing values, distribution shift."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from triptych.data.checks import (
    PSI_EPSILON,
    CheckResult,
    distribution_shift_check,
    missing_values_check,
    schema_check,
)
from triptych.data.schema import ColumnSchema, Schema, infer_schema
from triptych.errors import InvalidInput

N = 5_000


def sample(seed: int, *, shift: float = 0.0, new_category: float = 0.0) -> pd.DataFrame:
    """Synthetic data; ``shift`` moves ``income``'s mean by that many standard deviations."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nantes"], N, p=[0.5, 0.3, 0.2]).astype(object)
    city[rng.random(N) < new_category] = "Brest"
    return pd.DataFrame(
        {
            "age": rng.normal(40.0, 10.0, N),
            "income": rng.normal(50_000.0 + shift * 8_000.0, 8_000.0, N),
            "visits": rng.poisson(3.0, N),
            "city": pd.array(city, dtype="str"),
            "member": rng.random(N) < 0.3,
        }
    )


def strict_json(result: CheckResult) -> dict[str, Any]:
    payload = result.to_dict()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    return payload


# --- schema -----------------------------------------------------------------------------------


def test_schema_check_passes_on_conforming_data() -> None:
    data = sample(0)
    result = schema_check(data, infer_schema(data))
    assert result.passed
    assert result.name == "schema"
    assert result.details == {"violations": []}
    assert "matches the schema (5 columns)" in result.message


def test_schema_check_lists_violations() -> None:
    schema = Schema([ColumnSchema("age", "float", min=0, max=100), ColumnSchema("zip", "string")])
    data = pd.DataFrame({"age": [20.0, -3.0, 130.0], "note": ["a", "b", "c"]})
    result = schema_check(data, schema)
    assert not result.passed
    payload = strict_json(result)
    assert [(v["kind"], v["column"], v["count"]) for v in payload["details"]["violations"]] == [
        ("out_of_range", "age", 2),
        ("missing_column", "zip", 0),
        ("extra_column", "note", 0),
    ]
    assert result.message.startswith("3 schema violation(s)")


# --- missing values ---------------------------------------------------------------------------


def test_missing_values_default_allows_none() -> None:
    data = pd.DataFrame(
        {"a": [1.0, np.nan, 3.0, 4.0], "b": ["x", None, "y", "z"], "c": [1, 2, 3, 4]}
    )
    result = missing_values_check(data)
    assert not result.passed
    columns = strict_json(result)["details"]["columns"]
    assert columns["a"] == {
        "present": True,
        "rows": 4,
        "nulls": 1,
        "fraction": 0.25,
        "max_fraction": 0.0,
        "passed": False,
    }
    assert columns["b"]["fraction"] == 0.25 and not columns["b"]["passed"]
    assert columns["c"]["passed"]
    assert "a (25.00% > 0.00%)" in result.message


def test_missing_values_thresholds() -> None:
    data = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [None, None, "y", "z"]})
    assert missing_values_check(data, 0.5).passed
    assert not missing_values_check(data, 0.4).passed
    assert missing_values_check(data, 0.25, columns=["a"]).passed
    per_column = missing_values_check(data, {"a": 0.25, "b": 0.5})
    assert per_column.passed
    assert per_column.details["columns"]["b"]["max_fraction"] == 0.5
    # with a mapping, the mapping's columns are checked; other named columns allow none
    only_a = missing_values_check(data, {"a": 0.3})
    assert only_a.passed and list(only_a.details["columns"]) == ["a"]
    assert not missing_values_check(data, {"a": 0.3}, columns=["a", "b"]).passed


def test_missing_values_on_a_missing_column_fails() -> None:
    result = missing_values_check(pa.table({"a": [1, 2]}), 0.1, columns=["a", "gone"])
    assert not result.passed
    assert result.details["columns"]["gone"]["present"] is False
    assert "gone (missing)" in result.message


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.1", {"a": 2.0}])
def test_missing_values_rejects_bad_thresholds(bad: object) -> None:
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        missing_values_check(pd.DataFrame({"a": [1.0]}), bad)  # type: ignore[arg-type]


# --- distribution shift -----------------------------------------------------------------------


def test_no_shift_passes() -> None:
    result = distribution_shift_check(sample(1), sample(2))
    assert result.passed, result.message
    payload = strict_json(result)
    columns = payload["details"]["columns"]
    assert list(columns) == ["age", "income", "visits", "city", "member"]
    for name in ("age", "income", "visits"):
        assert columns[name]["kind"] == "numeric"
        assert columns[name]["psi"] < 0.05
        assert columns[name]["ks_pvalue"] > 0.05
        assert 0 <= columns[name]["ks_statistic"] < 0.05
    assert columns["city"]["kind"] == "categorical"
    assert columns["city"]["ks_pvalue"] is None
    assert columns["city"]["unseen"] == {"count": 0, "values": []}
    assert result.message == "no drift in 5 column(s)"


def test_mean_shift_of_one_std_flags_only_that_column() -> None:
    result = distribution_shift_check(sample(1), sample(2, shift=1.0))
    assert not result.passed
    columns = result.details["columns"]
    assert [name for name, d in columns.items() if d["drifted"]] == ["income"]
    income = columns["income"]
    assert income["psi"] > 0.5  # well above the 0.2 rule of thumb
    assert income["ks_pvalue"] < 1e-10
    assert income["ks_statistic"] > 0.3  # Phi(0.5) - Phi(-0.5) = 0.38 for a 1-sd shift
    assert result.message.startswith("drift in 1 of 5 column(s): income (psi ")


def test_new_category_drifts() -> None:
    result = distribution_shift_check(sample(1), sample(2, new_category=0.1))
    columns = result.details["columns"]
    assert [name for name, d in columns.items() if d["drifted"]] == ["city"]
    assert columns["city"]["unseen"]["values"] == ["Brest"]
    assert columns["city"]["unseen"]["count"] == pytest.approx(0.1 * N, rel=0.15)
    assert columns["city"]["psi"] > 0.2


def test_categorical_psi_is_the_textbook_formula() -> None:
    reference = pd.DataFrame({"c": ["x"] * 50 + ["y"] * 50})
    current = pd.DataFrame({"c": ["x"] * 90 + ["y"] * 10})
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    psi = distribution_shift_check(reference, current).details["columns"]["c"]["psi"]
    # the empty "unseen" bucket contributes (eps - eps) * log(1) = 0
    assert psi == pytest.approx(expected)
    unseen_only = pd.DataFrame({"c": ["x"] * 50 + ["y"] * 49 + ["z"]})
    small = distribution_shift_check(reference, unseen_only).details["columns"]["c"]
    assert small["psi"] == pytest.approx(
        (0.49 - 0.5) * math.log(0.49 / 0.5) + (0.01 - PSI_EPSILON) * math.log(0.01 / PSI_EPSILON)
    )


def test_numeric_psi_uses_reference_deciles() -> None:
    reference = pd.DataFrame({"x": np.arange(1000, dtype=float)})
    # every current value falls into the reference's top decile
    current = pd.DataFrame({"x": np.full(200, 995.0)})
    column = distribution_shift_check(reference, current, ks_pvalue=None).details["columns"]["x"]
    p, q = 0.1, 1.0
    expected = (q - p) * math.log(q / p) + 9 * (PSI_EPSILON - p) * math.log(PSI_EPSILON / p)
    assert column["psi"] == pytest.approx(expected, rel=1e-6)
    assert column["ks_pvalue"] is None and column["drifted"]


def test_ks_alone_can_flag_drift() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    current = pd.DataFrame({"x": rng.normal(0.1, 1, 20_000)})  # small shift: low PSI
    strict = distribution_shift_check(reference, current).details["columns"]["x"]
    assert strict["psi"] < 0.2 and strict["ks_pvalue"] < 0.05 and strict["drifted"]
    assert "ks p-value" in strict["reason"]
    assert distribution_shift_check(reference, current, ks_pvalue=None).passed


def test_shift_check_accepts_arrow_and_mixes_inputs() -> None:
    table = pa.Table.from_pandas(sample(1), preserve_index=False)
    assert distribution_shift_check(table, sample(2)).passed
    assert not distribution_shift_check(table, sample(2, shift=1.0), columns=["income"]).passed
    only_age = distribution_shift_check(table, sample(2, shift=1.0), columns=["age"])
    assert only_age.passed and list(only_age.details["columns"]) == ["age"]


def test_structural_changes_count_as_drift() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0], "z": [1.0, 2.0, 3.0]})
    current = pd.DataFrame({"y": ["1", "2", "3"], "z": [np.nan, np.nan, np.nan]})
    columns = distribution_shift_check(reference, current).details["columns"]
    assert columns["x"]["drifted"] and columns["x"]["reason"] == "missing from the current data"
    assert columns["y"]["drifted"] and "float to string" in columns["y"]["reason"]
    assert columns["z"]["drifted"] and columns["z"]["reason"] == "no values in the current data"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bins": 1}, "bins"),
        ({"psi_threshold": -1}, "psi_threshold"),
        ({"ks_pvalue": 2.0}, "ks_pvalue"),
        ({"columns": ["nope"]}, "'nope' is not in the reference"),
        ({"columns": "age"}, "list of column names"),
    ],
)
def test_shift_check_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    data = pd.DataFrame({"age": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match=match):
        distribution_shift_check(data, data, **kwargs)  # type: ignore[arg-type]
