"""Drift verdicts on synthetic data with known shifts, and the statistics against scipy's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from triptych.errors import InvalidInput
from triptych.monitoring.drift import Thresholds, compare
from triptych.monitoring.stats import ks_pvalue


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.normal(0, 1, n),
            "visits": rng.poisson(3, n),
            "city": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "plan": pd.Categorical(rng.choice(["free", "pro"], n, p=[0.7, 0.3])),
            "active": rng.random(n) < 0.6,
        }
    )


def test_known_shifts_flag_exactly_the_shifted_columns() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    ref, cur = _frame(rng, n), _frame(rng, n)
    cur["age"] = rng.normal(55, 10, n)  # mean shift of half a std
    cur["income"] = rng.lognormal(10, 0.9, n)  # variance change
    cur["city"] = rng.choice(["a", "b", "c"], n, p=[0.3, 0.3, 0.4])  # category shares
    plan = rng.choice(["free", "pro", "team"], n, p=[0.6, 0.25, 0.15])  # a new category
    cur["plan"] = pd.Categorical(plan)
    score = cur["score"].to_numpy().copy()
    score[rng.random(n) < 0.2] = np.nan  # 20 % more missing values, same distribution
    cur["score"] = score

    report = compare(ref, cur)

    verdicts = {name: col.drifted for name, col in report.columns.items()}
    assert verdicts == {
        "age": True,
        "income": True,
        "score": True,
        "visits": False,
        "city": True,
        "plan": True,
        "active": False,
    }
    assert report.columns["plan"].new_categories == ["team"]
    assert report.columns["score"].cur_missing == pytest.approx(0.2, abs=0.01)
    assert any("missing rate" in r for r in report.columns["score"].reasons)
    assert report.columns["score"].wasserstein is not None
    assert report.columns["score"].wasserstein < 0.05  # the values themselves did not move
    assert report.drifted_share == pytest.approx(5 / 7)
    assert report.drifted is True
    assert report.drifted_columns == ["age", "income", "score", "city", "plan"]


def test_no_shift_at_one_million_rows_flags_nothing() -> None:
    """With n = 1M every p-value is tiny for the smallest shift; effect sizes keep it quiet."""
    rng = np.random.default_rng(2)
    n = 1_000_000
    ref = pd.DataFrame({"x": rng.normal(0, 1, n), "c": rng.choice(list("abcd"), n)})
    cur = pd.DataFrame(
        {"x": rng.normal(0.01, 1, n), "c": rng.choice(list("abcd"), n, p=[0.26, 0.24, 0.25, 0.25])}
    )
    report = compare(ref, cur)
    assert report.columns["x"].ks_pvalue is not None and report.columns["x"].ks_pvalue < 0.01
    assert report.columns["c"].chi2_pvalue is not None
    assert report.columns["c"].chi2_pvalue < 0.01  # significant, and yet tiny
    assert not report.columns["x"].drifted
    assert not report.columns["c"].drifted
    assert report.drifted is False and report.drifted_share == 0.0


@pytest.mark.parametrize(
    "n,m,shift,scale", [(20_000, 15_000, 0.1, 1.3), (50_000, 50_000, 0.005, 1.0)]
)
def test_numeric_statistics_match_scipy(n: int, m: int, shift: float, scale: float) -> None:
    rng = np.random.default_rng(n)
    a = np.round(rng.normal(0, 1, n), 2)  # rounding makes ties, the hard case
    b = np.round(rng.normal(shift, scale, m), 2)
    col = compare(pd.DataFrame({"x": a}), pd.DataFrame({"x": b})).columns["x"]

    ks = sps.ks_2samp(a, b, method="asymp")
    assert col.ks_statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert col.ks_pvalue == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    w1 = sps.wasserstein_distance(a, b)
    assert col.wasserstein == pytest.approx(w1 / np.std(a), rel=1e-9)


def test_ks_pvalue_at_large_n_is_scipys_or_its_close_limit() -> None:
    """Where scipy's exact sum costs O(n) (p < ~0.025 at large n) the Kolmogorov limit is used."""
    n = 1_000_000
    en = n / 2
    for z in (0.3, 1.0, 1.36, 1.45):  # p from 1 down to ~0.03: scipy's own value
        d = z / np.sqrt(en)
        assert ks_pvalue(d, n, n) == pytest.approx(sps.kstwo.sf(d, en), rel=1e-12)
    for z in (2.43, 3.49, 5.62):  # p = 1e-5 .. 1e-27: within 1 % of scipy
        d = z / np.sqrt(en)
        assert ks_pvalue(d, n, n) == pytest.approx(sps.kstwo.sf(d, en), rel=1e-2)
    assert ks_pvalue(0.5, n, n) == 0.0


def test_psi_uses_reference_deciles() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 10_000), rng.normal(0.5, 1, 10_000)
    col = compare(pd.DataFrame({"x": a}), pd.DataFrame({"x": b})).columns["x"]
    edges = np.quantile(np.sort(a), np.arange(1, 10) / 10, method="inverted_cdf")
    bins = np.concatenate(([-np.inf], edges, [np.inf]))
    r = np.histogram(a, bins)[0] / a.size
    c = np.histogram(b, bins)[0] / b.size
    # np.histogram bins are [lo, hi); ours (lo, hi]: equal on continuous data without ties.
    expected = float(np.sum((c - r) * np.log(c / r)))
    assert col.psi == pytest.approx(expected, rel=1e-2)


def test_categorical_statistics_match_scipy_including_unseen_categories() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"c": rng.choice(["x", "y", "z"], 5000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": rng.choice(["x", "y", "z", "new"], 4000, p=[0.45, 0.3, 0.2, 0.05])})
    col = compare(ref, cur).columns["c"]

    cats = ["x", "y", "z", "new"]
    r = ref["c"].value_counts().reindex(cats, fill_value=0).to_numpy()
    c = cur["c"].value_counts().reindex(cats, fill_value=0).to_numpy()
    chi2, p, _dof, _ = sps.chi2_contingency(np.vstack([r, c]), correction=False)
    assert col.chi2 == pytest.approx(chi2, rel=1e-12)
    assert col.chi2_pvalue == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert col.new_categories == ["new"]
    assert col.cramers_v == pytest.approx(np.sqrt(chi2 / (r.sum() + c.sum())), rel=1e-12)
    assert col.drifted  # 5 % of a category never seen: PSI with the epsilon is large
    assert col.psi is not None and col.psi > 0.2


def test_prediction_drift_is_reported_separately() -> None:
    rng = np.random.default_rng(5)
    n = 10_000
    ref = pd.DataFrame({"f": rng.normal(0, 1, n), "pred": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"f": rng.normal(0, 1, n), "pred": rng.normal(1, 1, n)})
    report = compare(ref, cur, prediction="pred")
    assert report.prediction_drifted is True
    assert report.columns["pred"].is_prediction
    assert report.drifted_share == 0.0  # features only
    assert report.drifted is False


def test_schema_violations_are_reported_not_raised() -> None:
    rng = np.random.default_rng(6)
    n = 1000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "gone": 1.0})
    cur = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.choice(["x", "y"], n), "extra": rng.normal(size=n)}
    )
    report = compare(ref, cur)
    assert report.missing_columns == ["gone"]
    assert report.unexpected_columns == ["extra"]
    assert list(report.type_changes) == ["b"]
    assert report.type_changes["b"]["reference"] == "float64"
    assert report.type_changes["b"]["current"] != "float64"
    assert report.columns["b"].drifted
    assert any("type changed" in r for r in report.columns["b"].reasons)
    assert not report.columns["a"].drifted
    assert "gone" not in report.columns


def test_report_serialises_to_json_and_frame() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"x": rng.normal(size=500), "const": 1.0, "c": ["a"] * 500})
    cur = pd.DataFrame({"x": rng.normal(size=500), "const": 2.0, "c": ["a"] * 500})
    report = compare(ref, cur)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["columns"]["const"]["wasserstein"] is None  # infinite: constant reference moved
    assert data["columns"]["const"]["drifted"] is True
    assert data["thresholds"]["psi"] == 0.2
    frame = report.to_frame()
    assert list(frame.index) == ["x", "const", "c"]
    assert bool(frame.loc["const", "drifted"]) is True


def test_thresholds_override_and_reject_unknown_names() -> None:
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 5000)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 5000)})
    assert compare(ref, cur).columns["x"].drifted
    relaxed = {"psi": 10.0, "wasserstein": 10.0, "ks_statistic": 1.0}
    assert not compare(ref, cur, thresholds=relaxed).columns["x"].drifted
    assert Thresholds.of(None) == Thresholds()
    with pytest.raises(InvalidInput, match="unknown drift threshold"):
        compare(ref, cur, thresholds={"pis": 0.1})
    with pytest.raises(InvalidInput, match=">= 0"):
        compare(ref, cur, thresholds={"psi": -1})


def test_bad_input_raises_invalid_input_with_the_fix() -> None:
    ref = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="no rows") as err:
        compare(ref, ref.iloc[0:0])
    assert err.value.hint
    with pytest.raises(InvalidInput, match="no column in common"):
        compare(ref, pd.DataFrame({"b": [1.0]}))
    with pytest.raises(InvalidInput, match="not in the reference") as err:
        compare(ref, ref, columns=["nope"])
    assert err.value.hint and "a" in err.value.hint
    with pytest.raises(InvalidInput, match="DataFrame"):
        compare(ref, [[1.0]])


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    cur = ref.copy()
    cur.loc[::3, "x"] = np.nan
    before_ref, before_cur = ref.copy(), cur.copy()
    compare(ref, cur, columns=["x"])
    pd.testing.assert_frame_equal(ref, before_ref)
    pd.testing.assert_frame_equal(cur, before_cur)


def test_column_missing_everywhere_on_one_side_drifts() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    cur = pd.DataFrame({"x": [np.nan] * 4})
    col = compare(ref, cur).columns["x"]
    assert col.drifted and col.cur_missing == 1.0 and col.psi is None


def test_infinities_count_as_missing_and_nullable_integers_work() -> None:
    rng = np.random.default_rng(10)
    n = 5000
    x = rng.normal(size=n)
    x_inf = x.copy()
    x_inf[:1000] = np.inf  # 20 % of the values are not measurable
    ints = pd.array(rng.poisson(3, n), dtype="Int64")
    ints_missing = ints.copy()
    ints_missing[:50] = pd.NA  # 1 %: below the missing-rate threshold
    ref = pd.DataFrame({"x": x, "i": ints})
    cur = pd.DataFrame({"x": x_inf, "i": ints_missing})
    with np.errstate(all="raise"):  # no NaN/inf arithmetic slips through
        report = compare(ref, cur)
    x_col, i_col = report.columns["x"], report.columns["i"]
    assert x_col.cur_missing == pytest.approx(0.2) and x_col.cur_count == 4000
    assert x_col.drifted and any("missing rate" in r for r in x_col.reasons)
    assert x_col.wasserstein is not None and np.isfinite(x_col.wasserstein)
    assert i_col.kind == "numeric" and i_col.cur_missing == pytest.approx(0.01)
    assert not i_col.drifted
    assert np.isinf(cur["x"]).sum() == 1000  # the caller's frame is untouched


def test_small_samples_need_significance_before_an_effect_counts() -> None:
    """At 100-300 rows PSI and Wasserstein are noisy: noise alone must not flag."""
    rng = np.random.default_rng(11)
    false_alarms = 0
    detected = 0
    for n in (100, 300):
        for _ in range(20):
            ref = pd.DataFrame({"x": rng.normal(size=n), "m": rng.normal(size=n)})
            same = pd.DataFrame({"x": rng.normal(size=n), "m": rng.normal(size=n)})
            report = compare(ref, same)
            false_alarms += len(report.drifted_columns)
            shifted = pd.DataFrame({"x": rng.normal(1.0, 1, n)})  # one std: clear even here
            detected += compare(ref, shifted, columns=["x"]).columns["x"].drifted
    assert false_alarms == 0
    assert detected == 40
