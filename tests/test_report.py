"""The monitoring report of a real deployed model, from a real prediction log (written as the
server writes it), delayed labels and recorded checks: the data it gathers, the HTML it
renders (self-contained, user text escaped) and the CLI command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

import triptych
import triptych.cli.monitor_report  # registers ``monitor report`` on the app
from test_checks import MINUTE, T0, features, serve
from triptych import deployments
from triptych.data import registry as datasets
from triptych.errors import InvalidInput, NotFound, TriptychError
from triptych.models import registry
from triptych.monitoring import alerts, checks, labels, monitors, report

FEATURES = list(load_diabetes(as_frame=True).data.columns)
WINDOWS = [(T0, T0 + 10 * MINUTE), (T0 + 20 * MINUTE, T0 + 30 * MINUTE)]
WINDOWS.append((T0 + 40 * MINUTE, T0 + 50 * MINUTE))
SHIFTED = ["bmi", "bp", "s5", "s6", "age", "s1"]


class Scenario:
    def __init__(self, ridge: Ridge, served: list[pd.DataFrame], mse: float) -> None:
        self.ridge, self.served, self.offline_mse = ridge, served, mse


@pytest.fixture
def monitored() -> Scenario:
    """diabetes v1 deployed and monitored (10 min windows); three windows served: two like
    the training data, then six features shifted by 2 std with outcomes 1.6x (labelled), each
    checked and recorded."""
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    datasets.add("diabetes", x.assign(target=y))
    ridge = Ridge(alpha=0.5).fit(x, y)
    offline = float(mean_squared_error(y, ridge.predict(x)))
    with triptych.start_run(experiment="diabetes") as run:
        triptych.log_input("datasets:/diabetes@1")
        triptych.log_metric("mse", offline)
        triptych.log_model(ridge, "model", input_example=x.head(2))
    registry.register(f"runs:/{run.run_id}/model", "diabetes")
    registry.set_alias("diabetes", "champion", 1)
    deployments.create("diabetes", "models:/diabetes@champion")
    monitors.create("diabetes", window="10m")
    served = []
    for i, (start, end) in enumerate(WINDOWS):
        rows = features().sample(200, random_state=10 + i, replace=True)
        outcome = y.loc[rows.index]
        if i == 2:
            for col in SHIFTED:
                rows[col] = rows[col] + 2 * x[col].std()
            outcome = outcome * 1.6
        rids = serve(rows, ridge, start)
        if i in (0, 2):
            labels.add("diabetes", list(zip(rids, outcome.tolist(), strict=True)))
        checks.run("diabetes", start_ms=start, end_ms=end)
        served.append(rows)
    return Scenario(ridge, served, offline)


def test_distributions_hold_every_feature_with_the_right_counts(monitored: Scenario) -> None:
    data = report.gather("diabetes")
    json.dumps(data, allow_nan=False)  # JSON-able as it is
    dist = data["distributions"]
    assert (dist["start_ms"], dist["end_ms"]) == WINDOWS[2] and dist["from_check"]
    assert [f["name"] for f in dist["features"]] == [*FEATURES, "prediction"]
    reference = load_diabetes(as_frame=True).data
    latest = monitored.served[2]
    for f in dist["features"]:
        if f["name"] == "prediction":
            ref_values = monitored.ridge.predict(reference)
            cur_values = monitored.ridge.predict(latest)
        else:
            ref_values, cur_values = reference[f["name"]], latest[f["name"]]
        assert f["kind"] == "numeric" and len(f["edges"]) == report.BINS + 1
        assert f["edges"][0] == pytest.approx(min(ref_values.min(), cur_values.min()))
        assert f["edges"][-1] == pytest.approx(max(ref_values.max(), cur_values.max()))
        assert f["reference"] == np.histogram(ref_values, f["edges"])[0].tolist()
        assert f["current"] == np.histogram(cur_values, f["edges"])[0].tolist()
        assert (sum(f["reference"]), sum(f["current"])) == (442, 200)
        assert f["drifted"] is (f["name"] in [*SHIFTED, "prediction"])
    bmi = next(f for f in dist["features"] if f["name"] == "bmi")
    assert bmi["psi"] > 0.2 and any("PSI" in r for r in bmi["reasons"])


def test_summary_drift_performance_and_alerts(monitored: Scenario) -> None:
    data = report.gather("diabetes")
    s = data["summary"]
    assert s["deployment"] == "diabetes" and s["reference"] == "datasets:/diabetes@1"
    assert s["primary"] == {
        "address": "models:/diabetes@champion", "model_name": "diabetes", "model_version": 1
    }  # fmt: skip
    latest = s["latest"]
    assert latest["end_ms"] == WINDOWS[2][1] and latest["drifted"] and latest["decayed"]
    assert set(latest["drifted_columns"]) == {*SHIFTED, "prediction"}
    assert latest["prediction_drifted"] is True and s["checks"] == 3
    # drift over time: one point per check, in check order, per feature
    drift = data["drift"]
    assert [c["end_ms"] for c in drift["checks"]] == [end for _, end in WINDOWS]
    assert [c["drifted"] for c in drift["checks"]] == [False, False, True]
    history = checks.history("diabetes")
    for col in [*FEATURES, "prediction"]:
        assert drift["columns"][col]["psi"] == [h["drift"]["columns"][col]["psi"] for h in history]
    bmi = drift["columns"]["bmi"]["psi"]
    assert bmi[0] < 0.2 and bmi[1] < 0.2 < bmi[2]
    assert drift["thresholds"] == {"psi": 0.2, "wasserstein": 0.1, "drift_share": 0.5}
    # performance: the two labelled windows, live beside offline
    perf = data["performance"]
    assert perf["metric"] == "mse" and perf["versions"] == [1]
    assert [w["window_start"] for w in perf["windows"]] == [WINDOWS[0][0], WINDOWS[2][0]]
    y = load_diabetes(as_frame=True).target
    first, shifted = monitored.served[0], monitored.served[2]
    live = [
        mean_squared_error(y.loc[first.index], monitored.ridge.predict(first)),
        mean_squared_error(y.loc[shifted.index] * 1.6, monitored.ridge.predict(shifted)),
    ]
    assert [w["live"] for w in perf["windows"]] == pytest.approx(live)
    offline = [monitored.offline_mse] * 2
    assert [w["offline_score"] for w in perf["windows"]] == pytest.approx(offline)
    assert perf["windows"][1]["decay"] > 0.1
    # alerts: what the store holds, newest first
    assert [a["id"] for a in data["alerts"]] == [a.id for a in alerts.list("diabetes")]
    assert {(a["kind"], a["key"]) for a in data["alerts"]} == {
        ("drift", "dataset"), ("drift", "prediction"), ("performance", "decay")
    }  # fmt: skip


def test_period_and_last_choose_the_checks(monitored: Scenario) -> None:
    one = report.gather("diabetes", last=1)
    assert [c["end_ms"] for c in one["drift"]["checks"]] == [WINDOWS[2][1]]
    assert [w["window_start"] for w in one["performance"]["windows"]] == [WINDOWS[2][0]]
    early = report.gather("diabetes", end_ms=WINDOWS[1][1])
    assert [c["end_ms"] for c in early["drift"]["checks"]] == [WINDOWS[0][1], WINDOWS[1][1]]
    assert (early["distributions"]["start_ms"], early["distributions"]["end_ms"]) == WINDOWS[1]
    bmi = next(f for f in early["distributions"]["features"] if f["name"] == "bmi")
    assert bmi["current"] == np.histogram(monitored.served[1]["bmi"], bmi["edges"])[0].tolist()
    assert early["summary"]["latest"]["drifted"] is False
    # the drift alerts were raised by the third window's check: not in the early period
    assert [a["kind"] for a in early["alerts"]] == []
    late = report.gather("diabetes", start_ms=WINDOWS[1][1], window="5m")
    assert [c["end_ms"] for c in late["drift"]["checks"]] == [WINDOWS[2][1]]
    assert late["performance"]["window_ms"] == 5 * MINUTE
    with pytest.raises(InvalidInput, match="ends before it starts"):
        report.gather("diabetes", start_ms=T0, end_ms=T0)
    with pytest.raises(InvalidInput, match="invalid window"):
        report.gather("diabetes", window="often")


def _json_block(html: str) -> Any:
    found = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S
    )
    assert found is not None
    return json.loads(found[1])


def test_the_page_is_self_contained(monitored: Scenario) -> None:
    data = report.gather("diabetes")
    html = report.render(data)
    assert _json_block(html) == data
    assert "Chart.js v4.6.1" in html and report.chart_js() in html
    # nothing is loaded at view time: no external src/href, stylesheet link or CSS import
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", html, re.I)
    page = html.replace(report.chart_js(), "")  # the page's own markup, style and script
    assert not re.search(r"<link\b|@import|url\(|fetch\(|XMLHttpRequest", page, re.I)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.I)
    for name in [*FEATURES, "prediction"]:
        assert f"<h3>{name}" in html
    assert html.count("<canvas") == len(FEATURES) + 1 + 4  # histograms, 3 drift, 1 performance


def test_user_text_is_escaped_in_the_page_and_in_the_data(monitored: Scenario) -> None:
    attack = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    alerts.raise_alert("diabetes", "drift", "key", "warning", f"column {attack} & more")
    data = report.gather("diabetes")
    data["distributions"]["features"][0]["name"] = attack
    data["drift"]["columns"][attack] = data["drift"]["columns"].pop("age")
    html = report.render(data)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the alert, the title
    assert "&amp; more" in html
    assert html.count("</script>") == 3  # the JSON block, Chart.js, the page's own script
    assert _json_block(html) == data  # "</script>" inside the data is \u003c/script\u003e
    assert "\\u003c/script\\u003e" in html


def test_write_is_atomic_and_refuses_bad_paths(monitored: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "diabetes.html"
    with pytest.raises(InvalidInput, match="does not exist") as e:
        report.write("diabetes", out)
    assert "mkdir" in (e.value.hint or "") and not out.parent.exists()
    out.parent.mkdir()
    out.write_text("old")
    assert report.write("diabetes", out) == out.resolve()
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["diabetes.html"]  # no temp file left
    with pytest.raises(InvalidInput, match="it is a folder"):
        report.write("diabetes", out.parent)
    with pytest.raises(NotFound):
        report.write("ghost", tmp_path / "ghost.html")
    assert not (tmp_path / "ghost.html").exists()


def test_a_monitor_without_checks_still_reports(monitored: Scenario) -> None:
    deployments.create("quiet", "models:/diabetes@champion")
    monitors.create("quiet", window="10m")
    data = report.gather("quiet", end_ms=T0 + 10 * MINUTE)
    assert data["summary"]["latest"] is None and data["drift"]["checks"] == []
    assert data["performance"]["windows"] == [] and data["alerts"] == []
    assert [f["name"] for f in data["distributions"]["features"]] == FEATURES
    assert all(sum(f["current"]) == 0 for f in data["distributions"]["features"])
    assert any("no check recorded" in n for n in data["notes"])
    assert "No check recorded in this period" in report.render(data)


def test_categories_share_one_axis_and_the_rest_is_other() -> None:
    ref = pd.Series([*"aaabbc", None] + [f"r{i}" for i in range(30)], dtype=object)
    cur = pd.Series([*"bbbbd", None, None, True], dtype=object)
    h = report._histogram(ref, cur, report.BINS)
    assert h["kind"] == "categorical" and h["edges"] is None
    assert h["labels"][:5] == ["b", "a", "True", "c", "d"]  # by count over both, then name
    assert len(h["labels"]) == report.MAX_CATEGORIES + 1 and h["labels"][-1] == report.OTHER
    assert (sum(h["reference"]), sum(h["current"])) == (36, 6)  # every value, once
    assert h["reference"][:5] == [2, 3, 0, 1, 0] and h["current"][:5] == [4, 0, 1, 0, 1]
    assert (h["reference_missing"], h["current_missing"]) == (1, 2)
    assert h["reference"][-1] == 30 - (report.MAX_CATEGORIES - 5)
    numbers = report._histogram(pd.Series([1.0, np.inf, np.nan, 3.0]), pd.Series([2.0]), 2)
    assert numbers["edges"] == [1.0, 2.0, 3.0] and numbers["reference"] == [1, 1]
    assert (numbers["current"], numbers["reference_missing"]) == ([0, 1], 2)


# -- the CLI ----------------------------------------------------------------------------------
def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from triptych.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_cli_writes_the_report(monitored: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "out.html"
    done = _cli("monitor", "report", "diabetes", "--html", str(out), "--last", "2")
    assert done.exit_code == 0, (done.output, done.exception)
    assert f"report written to {out}" in done.output.replace("\n", "")
    assert len(_json_block(out.read_text())["drift"]["checks"]) == 2
    printed = _cli("monitor", "report", "deployments:/diabetes", "--json", "--end", "2100-01-01")
    assert printed.exit_code == 0, (printed.output, printed.exception)
    assert json.loads(printed.stdout)["summary"]["checks"] == 3
    both = _cli("monitor", "report", "diabetes", "--json", "--html", str(out), "--last", "1")
    assert both.exit_code == 0 and len(json.loads(both.stdout)["drift"]["checks"]) == 1
    assert (
        "report written to" in both.stderr
        and len(_json_block(out.read_text())["drift"]["checks"]) == 1
    )
    missing = _cli("monitor", "report", "diabetes")
    assert isinstance(missing.exception, InvalidInput) and "--html" in (
        missing.exception.hint or ""
    )
    deployments.create("plain", "models:/diabetes@champion")
    for name, words in (("plain", "monitor"), ("diabetes", "folder")):
        target = tmp_path / "nowhere" / "x.html" if name == "diabetes" else tmp_path / "p.html"
        failed = _cli("monitor", "report", name, "--html", str(target))
        assert isinstance(failed.exception, TriptychError) and words in str(failed.exception)
        assert not target.exists()


def test_cli_missing_deployment_is_one_line_and_exit_1(tmp_path: Path) -> None:
    code = (
        "import sys, triptych.cli.monitor_report\n"
        "from triptych.cli.main import run\n"
        "sys.argv = ['triptych', *sys.argv[1:]]\n"
        "run()"
    )
    out = tmp_path / "ghost.html"
    done = subprocess.run(
        [sys.executable, "-c", code, "monitor", "report", "ghost", "--html", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert "ghost" in done.stderr and "not found" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
