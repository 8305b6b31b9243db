"""Profiles match numpy/pandas, are JSON-ready without NaN, and sparklines draw histograms."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from triptych.data.profile import QUANTILES, profile, sparkline
from triptych.errors import InvalidInput


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 2_000
    x = rng.normal(10.0, 3.0, n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": pd.array(rng.integers(-5, 50, n), dtype="Int64"),
            "s": rng.choice(["red", "green", "blue", "teal"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "c": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "b": rng.random(n) < 0.25,
        }
    )


def strict_json(value: object) -> object:
    return json.loads(json.dumps(value, allow_nan=False))


def test_numeric_profile_matches_numpy_and_pandas(frame: pd.DataFrame) -> None:
    result = profile(frame, bins=15)
    x = result["columns"]["x"]
    series = frame["x"]
    values = series.dropna().to_numpy()
    assert result["rows"] == len(frame)
    assert x["dtype"] == "float"
    assert (x["count"], x["nulls"]) == (series.count(), series.isna().sum())
    assert x["mean"] == pytest.approx(series.mean(), rel=1e-12)
    assert x["std"] == pytest.approx(series.std(), rel=1e-12)  # pandas: ddof=1
    assert (x["min"], x["max"]) == (series.min(), series.max())
    assert list(x["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    for key, q in QUANTILES.items():
        assert x["quantiles"][key] == pytest.approx(series.quantile(q), rel=1e-12)
    counts, edges = np.histogram(values, bins=15)
    assert x["histogram"]["counts"] == counts.tolist()
    assert x["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert sum(x["histogram"]["counts"]) == x["count"]


def test_integer_profile_keeps_exact_bounds(frame: pd.DataFrame) -> None:
    k = profile(frame)["columns"]["k"]
    assert k["dtype"] == "int"
    assert (k["min"], k["max"]) == (int(frame["k"].min()), int(frame["k"].max()))
    assert isinstance(k["min"], int)
    assert k["mean"] == pytest.approx(frame["k"].astype(float).mean())
    big = profile(pd.DataFrame({"n": [2**62 + 1, 2**62 + 3]}))["columns"]["n"]
    assert (big["min"], big["max"]) == (2**62 + 1, 2**62 + 3)  # not rounded through float


def test_categorical_profiles_count_like_pandas(frame: pd.DataFrame) -> None:
    columns = profile(frame, top=3)["columns"]
    for name, dtype in (("s", "string"), ("c", "category"), ("b", "bool")):
        entry = columns[name]
        expected = frame[name].value_counts()
        assert entry["dtype"] == dtype
        assert entry["distinct"] == frame[name].nunique()
        assert entry["count"] == len(frame) and entry["nulls"] == 0
        assert entry["top"] == [[k, int(v)] for k, v in expected.head(3).items()]
        assert set(entry) == {"dtype", "count", "nulls", "distinct", "top"}
    assert columns["b"]["top"][0][0] is False


def test_top_breaks_ties_by_value_and_skips_nulls() -> None:
    data = pd.DataFrame({"s": ["b", "a", None, "c", "a", "b", None, None]})
    entry = profile(data, top=2)["columns"]["s"]
    assert entry["top"] == [["a", 2], ["b", 2]]
    assert (entry["count"], entry["nulls"], entry["distinct"]) == (5, 3, 3)


def test_arrow_table_gives_the_same_profile(frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert profile(table) == profile(frame)


def test_profile_is_strict_json_in_edge_cases() -> None:
    data = pd.DataFrame(
        {
            "empty": [np.nan, np.nan, np.nan],
            "one": [np.nan, 4.0, np.nan],
            "inf": [1.0, np.inf, 3.0],
            "none": [None, None, None],
            "when": pd.to_datetime(["2024-03-01", None, "2023-12-31 08:00:00"], format="ISO8601"),
        }
    )
    result = profile(data)
    assert strict_json(result) == result
    empty, one, inf = (result["columns"][n] for n in ("empty", "one", "inf"))
    assert empty["count"] == 0 and empty["mean"] is None
    assert empty["quantiles"] == dict.fromkeys(QUANTILES)
    assert empty["histogram"] == {"edges": [], "counts": []}
    assert (one["mean"], one["std"], one["min"]) == (4.0, None, 4.0)  # one value: no sample std
    assert inf["max"] is None and inf["mean"] is None  # infinite, so not JSON: None
    assert inf["min"] == 1.0
    assert sum(inf["histogram"]["counts"]) == 2  # finite values only
    assert result["columns"]["none"]["top"] == []
    assert result["columns"]["when"]["min"] == "2023-12-31T08:00:00"
    assert result["columns"]["when"]["max"] == "2024-03-01T00:00:00"


def test_empty_table() -> None:
    result = profile(pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=str)}))
    assert result["rows"] == 0
    assert result["columns"]["x"]["count"] == 0
    assert result["columns"]["s"]["top"] == []
    assert strict_json(result) == result


@pytest.mark.parametrize(("bins", "top"), [(0, 10), (20, -1), (2.5, 10), (True, 10)])
def test_profile_arguments_are_checked(bins: object, top: object) -> None:
    with pytest.raises(InvalidInput):
        profile(pd.DataFrame({"x": [1.0]}), bins=bins, top=top)  # type: ignore[arg-type]


def test_sparkline_shape() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    line = sparkline([0, 1, 1000])
    assert line == "▁▂█"  # a tiny non-zero count still shows above an empty bin
    assert sparkline([5]) == "█"
    assert sparkline(np.array([3, 3])) == "██"


def test_sparkline_of_a_profile_histogram() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    counts = profile(pd.DataFrame({"x": values}), bins=12)["columns"]["x"]["histogram"]["counts"]
    line = sparkline(counts)
    assert len(line) == 12
    assert line[len(line) // 2 - 1 : len(line) // 2 + 1].count("█") >= 1  # peak in the middle
    assert line[0] in "▁▂" and line[-1] in "▁▂"


@pytest.mark.parametrize("bad", [[-1, 2], [1, math.nan], [math.inf]])
def test_sparkline_refuses_bad_counts(bad: list[float]) -> None:
    with pytest.raises(InvalidInput):
        sparkline(bad)
