"""The web UI in a real browser: Debian's chromium (headless, driven by playwright) against a
real uvicorn on 127.0.0.1, over a store filled by the diabetes example itself (three Ridge
runs through its evaluation gate: a registered model, a champion, a refused candidate), two
SGD runs logging a metric per epoch, a monitored deployment with a canary, and the example
pipeline run twice (the second time partly from its cache).

Screenshots of every page go to ``$TRIPTYCH_UI_SCREENSHOTS`` (``docs/img`` refreshes the
documentation's) or a temporary folder. Without chromium or playwright the tests skip, except
in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from triptych.artifacts.fs import FsspecArtifactStore
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diabetes" / "train.py"

SGD = """
import triptych
from sklearn.datasets import load_diabetes
from sklearn.linear_model import SGDRegressor
from sklearn.metrics import mean_squared_error
from sklearn.preprocessing import StandardScaler

x, y = load_diabetes(return_X_y=True)
x = StandardScaler().fit_transform(x)
for eta in (0.001, 0.01):
    with triptych.start_run(experiment="diabetes", name=f"sgd-{eta:g}"):
        triptych.log_params({"model": "SGDRegressor", "eta0": eta, "epochs": 30})
        model = SGDRegressor(eta0=eta, learning_rate="constant", random_state=0)
        for epoch in range(30):
            model.partial_fit(x[:350], y[:350])
            fit = model.predict(x[:350])
            triptych.log_metric("train_mse", float(mean_squared_error(y[:350], fit)), step=epoch)
            test = model.predict(x[350:])
            triptych.log_metric("mse", float(mean_squared_error(y[350:], test)), step=epoch)
"""

MONITORING = """
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from test_checks import MINUTE, T0, features, serve  # logs predictions as the server does
from triptych import deployments
from triptych.monitoring import checks, labels, monitors

x, y = load_diabetes(return_X_y=True, as_frame=True)
ridge = Ridge(alpha=0.5).fit(x, y)
deployments.create("diabetes", "models:/diabetes@champion")
deployments.set_canary("diabetes", "models:/diabetes/1", 20)
monitors.create("diabetes", window="10m")
for i in range(6):  # three ordinary windows, then a device that reads bmi, bp, s5 ever higher
    start, end = T0 + 20 * i * MINUTE, T0 + (20 * i + 10) * MINUTE
    rows = features().sample(150, random_state=10 + i, replace=True)
    outcome = y.loc[rows.index]
    if i >= 3:
        for col in ("bmi", "bp", "s5"):
            rows[col] = rows[col] + (i - 2) * 0.7 * x[col].std()
        outcome = outcome * (1 + 0.2 * (i - 2))
    rids = serve(rows, ridge, start)
    labels.add("diabetes", list(zip(rids, outcome.tolist(), strict=True)))
    checks.run("diabetes", start_ms=start, end_ms=end)
"""


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _missing(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def _python(code_or_file: str | Path, *args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["PYTHONPATH"] = str(ROOT / "tests")
    command = [str(code_or_file)] if isinstance(code_or_file, Path) else ["-c", code_or_file]
    subprocess.run([sys.executable, *command, *args], cwd=cwd, env=env, check=True, timeout=300,
                   capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The store of a project folder where the example ran, served on loopback."""
    folder = tmp_path_factory.mktemp("project")
    for alpha in ("0.1", "0.5", "1.0"):
        _python(EXAMPLE, "--alpha", alpha, cwd=folder)
    _python(SGD, cwd=folder)
    _python(MONITORING, cwd=folder)
    pipeline = ["pipeline", "run", str(ROOT / "examples" / "diabetes" / "pipeline.py")]
    apart = ["--experiment", "pipelines", "-p", "register.model_name=diabetes-pipeline"]
    _python("from triptych.cli.main import run; run()", *pipeline, *apart, cwd=folder)
    again = [*apart, "-p", "train.alpha=1.0"]  # ingest, validate and split come from the cache
    _python("from triptych.cli.main import run; run()", *pipeline, *again, cwd=folder)
    store = SqlStore(f"sqlite:///{folder / '.triptych' / 'triptych.db'}")
    artifacts = FsspecArtifactStore(f"file://{folder / '.triptych' / 'artifacts'}")
    with LiveServer(store, artifacts) as live:
        yield live
    store.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("TRIPTYCH_UI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(chromium: Any, server: LiveServer) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, base_url=server.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield tab
    context.close()
    # No script error and no failed request on any page; a bad filter's answer is a 400 on
    # purpose (the browser logs it), and the page shows its message.
    assert [e for e in errors if "status of 400" not in e] == []


def expect(locator: Any) -> Any:
    """playwright's assertions (they wait, and need no script evaluated in the page, which
    the pages' Content-Security-Policy would refuse)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _shot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"ui-{name}.png"), full_page=True)


def _names(page: Any) -> list[str]:
    return [
        t.strip() for t in page.locator("#runs-table tbody td:nth-child(2) a").all_inner_texts()
    ]


def test_browse_filter_and_sort_the_runs(page: Any, shots: Path) -> None:
    page.goto("/")
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.wait_for_url("**/ui/experiments/*/runs")
    assert sorted(_names(page)) == ["ridge-0.1", "ridge-0.5", "ridge-1", "sgd-0.001", "sgd-0.01"]
    page.evaluate("window.notReloaded = true")  # survives only if htmx swaps the table

    page.get_by_label("filter").fill("metrics.mse < 3300 and params.model = 'Ridge'")
    page.get_by_label("filter").press("Enter")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    assert _names(page) == ["ridge-0.5"]
    assert "filter=metrics.mse" in page.url  # the address keeps the filter (reload, share)
    assert page.evaluate("window.notReloaded === true")

    page.get_by_label("filter").fill("params.model = 'Ridge'")
    page.get_by_label("filter").press("Enter")
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    page.locator("a.sort[data-sort='metrics.mse']").click()
    page.wait_for_selector("a.sort.on[data-sort='metrics.mse']")
    assert _names(page) == ["ridge-0.5", "ridge-0.1", "ridge-1"]  # lowest mse first
    page.locator("a.sort[data-sort='metrics.mse']").click()
    expect(page.locator("a.sort.on[data-sort='metrics.mse']")).to_contain_text("▼")
    assert _names(page) == ["ridge-1", "ridge-0.1", "ridge-0.5"]
    assert page.evaluate("window.notReloaded === true")
    page.get_by_label("filter").fill("")
    page.get_by_label("filter").press("Enter")
    expect(page.locator("#runs-table tbody tr")).to_have_count(5)
    _shot(page, shots, "runs")

    page.get_by_label("filter").fill("metrics.mse <")
    page.get_by_label("filter").press("Enter")
    error = page.locator("#filter-error")
    error.wait_for()
    assert "expected" in error.inner_text() and "\n" not in error.inner_text().strip()


def test_open_a_run_with_its_charts_and_a_preview(page: Any, shots: Path) -> None:
    page.goto("/ui/experiments")
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.get_by_role("link", name="sgd-0.01").click()
    page.wait_for_selector("canvas[data-drawn]")  # Chart.js drew the curves
    assert page.locator("canvas[data-drawn]").count() == 2  # mse and train_mse over epochs
    assert "eta0" in page.locator("#params").inner_text()
    assert page.locator("#fingerprint").is_visible()
    _shot(page, shots, "run-charts")

    page.goto("/ui/experiments")
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.get_by_role("link", name="ridge-0.5").click()
    assert "datasets:/diabetes@1" in page.locator("#inputs").inner_text()
    assert "main" in page.locator("#fingerprint").inner_text() or "commit" in page.content()
    page.get_by_text("model/manifest.json").click()
    preview = page.locator("pre.preview")
    preview.wait_for()
    assert '"flavour"' in preview.inner_text() or "skops" in preview.inner_text()
    _shot(page, shots, "run")


def test_compare_two_runs(page: Any, shots: Path) -> None:
    page.goto("/ui/experiments")
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.get_by_label("select ridge-0.1").check()
    page.get_by_label("select ridge-1").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/ui/compare?*")
    header = page.locator("#compare-table thead").inner_text()
    assert "ridge-0.1" in header and "ridge-1" in header
    assert "params.alpha" in page.locator("#compare-table tr.diff").first.inner_text()
    page.wait_for_selector("canvas[data-chart='parallel'][data-drawn]")
    _shot(page, shots, "compare")

    page.goto("/ui/experiments")
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.get_by_label("select sgd-0.001").check()
    page.get_by_label("select sgd-0.01").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_selector("canvas[data-chart='chart-1'][data-drawn]")  # curves overlaid
    _shot(page, shots, "compare-curves")


def test_a_models_history(page: Any, shots: Path) -> None:
    page.goto("/ui/experiments")
    page.get_by_role("link", name="Models").click()
    assert "@champion → v2" in page.locator("#models").inner_text()
    page.get_by_role("link", name="diabetes", exact=True).click()
    history = page.locator("#history")
    text = history.inner_text()
    assert "gate" in text and "refused" in text and "@champion → v2 (was v1)" in text
    assert text.index("refused") < text.index("register")  # newest first
    assert "diabetes — version 2" in page.locator("#model-card").inner_text()
    _shot(page, shots, "model")


def test_a_deployment_and_its_monitoring(page: Any, shots: Path) -> None:
    page.goto("/ui/deployments")
    page.get_by_role("link", name="diabetes", exact=True).click()
    assert "canary 20 %" in page.locator("#traffic").inner_text()
    page.wait_for_selector("canvas[data-chart='performance'][data-drawn]")
    assert page.locator("canvas[data-drawn]").count() == 3  # drift share, PSI, live mse
    assert "critical" in page.locator("#alerts").inner_text()
    _shot(page, shots, "deployment")


def test_a_dataset_and_a_pipeline(page: Any, shots: Path) -> None:
    page.goto("/ui/experiments")
    page.get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="diabetes", exact=True).click()
    page.wait_for_selector("canvas[data-chart='hist-11'][data-drawn]")  # one per column
    assert "v1" in page.locator("#versions").inner_text()
    lineage = page.locator("#lineage").inner_text()
    assert "ridge-0.5" in lineage and "split" in lineage  # the script, the pipeline step
    assert page.get_by_role("link", name="diabetes v2").is_visible()  # the champion, from it
    _shot(page, shots, "dataset")

    page.get_by_role("link", name="Pipelines").click()
    page.get_by_role("link", name="diabetes", exact=True).click()
    dag = page.locator("svg#dag")
    assert dag.locator("g.step").count() == 6
    assert dag.locator("g.step.cached").count() == 3
    assert "hit" in page.locator("#steps").inner_text()
    dag.locator("g.step", has_text="train").locator("a").click()
    page.wait_for_url("**/ui/runs/*")
    assert page.locator("h1").inner_text().startswith("train")
    page.go_back()
    page.wait_for_selector("svg#dag")
    _shot(page, shots, "pipeline")


def test_a_missing_browser_skips_on_a_laptop_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        _missing("no chromium at /usr/bin/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        _missing("no chromium at /usr/bin/chromium")
