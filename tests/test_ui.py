"""The web UI's pages over a real server on loopback (no browser): status codes, what each
page shows, escaping of user text, the filter's one-line error, paging and permissions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from test_report import monitored  # noqa: F401  (a fixture: a deployed, monitored model)
from triptych.artifacts.fs import FsspecArtifactStore
from triptych.errors import PermissionDenied
from triptych.server.permissions import Permission
from triptych.store.entities import ArtifactEntry, Metric, RunSpec, RunStatus
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

EVIL = "<script>alert(1)</script>"


def make_store(root: Path) -> tuple[SqlStore, FsspecArtifactStore, dict[str, Any]]:
    """Five Ridge runs (alpha 0.1..0.5, mse falling with a loss curve), one run named like
    a script, artifacts, and a model ``diabetes`` with two versions, a champion and gates."""
    store = SqlStore(f"sqlite:///{root / 'store.db'}")
    artifacts = FsspecArtifactStore(f"file://{root / 'artifacts'}")
    exp = store.create_experiment("diabetes")
    ids = []
    for i in range(1, 6):
        run = store.create_run(
            RunSpec(exp, name=f"ridge-{i}", params={"alpha": f"0.{i}", "model": "Ridge"})
        )
        curve = [Metric("loss", 1.0 / (step + i), step, 1000 + step) for step in range(5)]
        store.finish_run(
            run.run_id,
            RunStatus.FINISHED,
            metrics=[*curve, Metric("mse", 3400.0 - 20 * i, 0, 2000)],
        )
        ids.append(run.run_id)
    evil = store.create_run(
        RunSpec(exp, name=EVIL, params={"alpha": EVIL, "model": "Lasso"}, tags={"note": EVIL})
    )
    text = artifacts.put_bytes(f'{{"note": "{EVIL}"}}'.encode())
    big = artifacts.put_bytes(b"x" * 100_000)
    store.record_artifacts(
        evil.run_id,
        [
            ArtifactEntry("report.json", text.digest, text.size),
            ArtifactEntry("big.txt", big.digest, big.size),
            ArtifactEntry("weights.bin", big.digest, big.size),
        ],
    )
    store.finish_run(evil.run_id, RunStatus.FAILED, metrics=[Metric("mse", 9999.0, 0, 1)])
    for version, run_id in enumerate(ids[3:], start=1):
        store.create_model_version("diabetes", f"runs:/{run_id}/model", run_id=run_id)
        store.set_model_alias("diabetes", "champion", version, reason="beats the champion")
        store.record_model_event(
            "diabetes",
            "gate",
            version=version,
            reason=f"passed: gate {version}",
            details={"passed": True, "metric": "mse", "candidate": 3320.0, "run_id": run_id},
        )
    store.record_model_event(
        "diabetes",
        "loop.rollback",
        version=1,
        reason="worse on the same live rows",
        details={"deployment": "clinic"},
    )
    return store, artifacts, {"experiment": exp, "ridge": ids, "evil": evil.run_id}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    store, artifacts, ids = make_store(tmp_path_factory.mktemp("ui"))
    with LiveServer(store, artifacts) as server:
        yield server, ids
    store.close()


@pytest.fixture
def ui(world: tuple[LiveServer, dict[str, Any]]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world[0].url) as client:
        yield client


@pytest.fixture
def ids(world: tuple[LiveServer, dict[str, Any]]) -> dict[str, Any]:
    return world[1]


def names(html: str) -> list[str]:
    """Run names in the order the runs table shows them."""
    return re.findall(r'<a href="/ui/runs/[0-9a-f]+">([^<]*)</a>', html)


def test_front_door_leads_to_the_experiments(ui: httpx.Client) -> None:
    response = ui.get("/", follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url).endswith("/ui/experiments")
    assert ">diabetes</a>" in response.text


def test_runs_table_lists_params_and_metrics(ui: httpx.Client, ids: dict[str, Any]) -> None:
    response = ui.get(f"/ui/experiments/{ids['experiment']}/runs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert len(names(response.text)) == 6
    assert "3,320.0" in response.text  # ridge-4's mse, formatted
    assert "<th" in response.text and ">alpha" in response.text


def test_runs_table_filters_and_sorts(ui: httpx.Client, ids: dict[str, Any]) -> None:
    base = f"/ui/experiments/{ids['experiment']}/runs"
    found = ui.get(base, params={"filter": "metrics.mse < 3350 and params.model = 'Ridge'"})
    assert sorted(names(found.text)) == ["ridge-3", "ridge-4", "ridge-5"]
    ordered = ui.get(base, params={"order": "metrics.mse ASC", "filter": "params.model = 'Ridge'"})
    assert names(ordered.text) == ["ridge-5", "ridge-4", "ridge-3", "ridge-2", "ridge-1"]
    assert "mse ▲" in ordered.text  # the sorted column says so
    down = ui.get(base, params={"order": "params.alpha DESC", "filter": "params.model = 'Ridge'"})
    assert names(down.text)[0] == "ridge-5"


def test_a_bad_filter_shows_the_one_line_error(ui: httpx.Client, ids: dict[str, Any]) -> None:
    response = ui.get(
        f"/ui/experiments/{ids['experiment']}/runs", params={"filter": "metrics.mse <<"}
    )
    assert response.status_code == 400
    error = re.search(r'<p class="error" id="filter-error">([^<]*)</p>', response.text)
    assert error and "expected number" in error.group(1)
    assert "Traceback" not in response.text
    assert 'name="filter" value="metrics.mse &lt;&lt;"' in response.text  # kept to fix it


def test_htmx_requests_get_only_the_table(ui: httpx.Client, ids: dict[str, Any]) -> None:
    response = ui.get(
        f"/ui/experiments/{ids['experiment']}/runs",
        params={"order": "name ASC"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="runs-table"' in response.text
    restore = ui.get(
        f"/ui/experiments/{ids['experiment']}/runs",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text  # going back in history needs the whole page


def test_runs_table_pages_with_tokens(ui: httpx.Client, ids: dict[str, Any]) -> None:
    base = f"/ui/experiments/{ids['experiment']}/runs"
    first = ui.get(base, params={"size": 25, "order": "name ASC"}).text
    assert 'id="next-page"' not in first  # six runs fit on one page of 25
    seen: list[str] = []
    url: str | None = f"{base}?size=2&order=name+ASC"
    pages = 0
    while url and pages < 10:  # two runs a page, following the page's own links
        html = ui.get(url).text
        seen += names(html)
        link = re.search(r'<a id="next-page" href="([^"]+)"', html)
        url = link.group(1).replace("&amp;", "&") if link else None
        pages += 1
    assert pages == 3
    assert seen == sorted(seen) and len(set(seen)) == 6  # in order, each run once
    assert "runs 5-6 of 6" in html  # the last page knows the total


def test_unknown_things_are_html_404s(ui: httpx.Client, ids: dict[str, Any]) -> None:
    for path in ("/ui/runs/0000", "/ui/experiments/999/runs", "/ui/models/nope"):
        response = ui.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "NotFound" in response.text


def test_pages_forbid_inline_scripts_and_framing(ui: httpx.Client, ids: dict[str, Any]) -> None:
    response = ui.get(f"/ui/runs/{ids['evil']}")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.text)
    assert all('type="application/json"' in attrs for attrs in scripts)  # data, never code


def test_user_text_is_escaped_everywhere(ui: httpx.Client, ids: dict[str, Any]) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    pages = [
        f"/ui/experiments/{ids['experiment']}/runs",
        f"/ui/runs/{ids['evil']}",
        f"/ui/compare?run={ids['evil']}&run={ids['ridge'][0]}",
        f"/ui/runs/{ids['evil']}/preview?path=report.json",
    ]
    for path in pages:
        response = ui.get(path)
        assert response.status_code == 200, path
        assert EVIL not in response.text, path
        assert escaped in response.text, path


def test_run_page_shows_the_run(ui: httpx.Client, ids: dict[str, Any]) -> None:
    run_id = ids["ridge"][3]
    html = ui.get(f"/ui/runs/{run_id}").text
    assert run_id in html and "ridge-4" in html
    assert 'id="params"' in html and "0.4" in html
    assert 'data-chart="chart-1"' in html  # the loss curve over 5 steps
    spec = re.search(r'<script type="application/json" id="chart-1">(.*?)</script>', html, re.S)
    assert spec and '"y": "loss"' in spec.group(1) and '"points": [[0, 0.25]' in spec.group(1)
    assert "registered as" in html and "@champion" not in html  # v1's alias moved on
    assert "no fingerprint recorded" in html  # made by the store API, not by a script


def test_previews_are_small_and_only_for_text(ui: httpx.Client, ids: dict[str, Any]) -> None:
    run = f"/ui/runs/{ids['evil']}"
    html = ui.get(run).text
    assert 'hx-get="/ui/runs/' in html and "path=report.json" in html
    assert "path=weights.bin" not in html  # binary: listed, never previewed
    big = ui.get(f"{run}/preview", params={"path": "big.txt"}).text
    assert "first 64.0 KB of 97.7 KB" in big
    assert big.count("x") < 70_000
    binary = ui.get(f"{run}/preview", params={"path": "weights.bin"}).text
    assert "no preview" in binary
    assert ui.get(f"{run}/preview", params={"path": "missing.txt"}).status_code == 404


def test_compare_overlays_metrics_and_params(ui: httpx.Client, ids: dict[str, Any]) -> None:
    a, b, c = ids["ridge"][:3]
    html = ui.get("/ui/compare", params={"run": [a, b, c], "metric": "mse"}).text
    assert html.count('href="/ui/runs/') >= 3
    assert 'class="diff"><th>params.alpha' in html  # the param that differs is marked
    overlay = re.search(r'id="chart-1">(.*?)</script>', html, re.S)
    assert overlay and overlay.group(1).count('"label"') == 3
    parallel = re.search(r'id="parallel">(.*?)</script>', html, re.S)
    assert parallel and '"axes": ["params.alpha", "metrics.mse"]' in parallel.group(1)
    assert ui.get("/ui/compare", params={"run": [a]}).status_code == 400
    assert ui.get("/ui/compare", params={"run": [a, "0000"]}).status_code == 404


def test_models_pages_show_aliases_and_the_timeline(
    ui: httpx.Client, world: tuple[LiveServer, dict[str, Any]]
) -> None:
    world[0].app.state.store.create_registered_model(
        "planned", description="not trained yet", tags={"team": "clinic", "goal": "<b>x</b>"}
    )
    planned = ui.get("/ui/models/planned").text
    assert "not trained yet" in planned and "team: clinic" in planned
    assert "<b>x</b>" not in planned and "&lt;b&gt;x&lt;/b&gt;" in planned  # escaped
    listing = ui.get("/ui/models").text
    assert "@champion → v2" in listing
    html = ui.get("/ui/models/diabetes").text
    assert 'id="history"' in html
    timeline = html[html.index('id="history"') :]
    assert timeline.index("loop.rollback") < timeline.index("register")  # newest first
    assert "passed: gate 2" in timeline and "deployment clinic" in timeline
    assert "Model card" in html and "diabetes — version 2" in html  # the champion's card
    assert "version 1" in ui.get("/ui/models/diabetes", params={"version": 1}).text


def test_static_assets_come_from_the_package(ui: httpx.Client) -> None:
    for name, kind in (
        ("vendor/htmx.min.js", "javascript"),
        ("vendor/chart.umd.js", "javascript"),
        ("ui.css", "css"),
        ("ui.js", "javascript"),
    ):
        response = ui.get(f"/ui/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
        again = ui.get(f"/ui/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    assert ui.get("/ui/static/../app.py").status_code == 404
    page = ui.get("/ui/experiments").text
    assert "http://" not in page.replace(ui.base_url.host, "") and "https://" not in page


class ReadersOnly:
    """A policy without the read permission: every page must refuse."""

    def authorize(self, request: object, permission: Permission) -> None:
        if permission is not Permission.PUBLIC:
            raise PermissionDenied("no")


def test_every_ui_route_needs_read(world: tuple[LiveServer, dict[str, Any]]) -> None:
    from triptych.server.permissions import permission_of

    server, ids = world
    ui_routes = [
        r
        for r in server.app.routes
        if getattr(r, "path", "").startswith("/ui") or getattr(r, "path", "") == "/"
    ]
    assert len(ui_routes) >= 8
    assert {permission_of(r) for r in ui_routes} == {Permission.READ}
    previous = server.app.state.policy
    server.app.state.policy = ReadersOnly()
    try:
        with httpx.Client(base_url=server.url) as client:
            for path in ("/", "/ui/experiments", f"/ui/runs/{ids['evil']}", "/ui/static/ui.css"):
                assert client.get(path).status_code == 403, path
    finally:
        server.app.state.policy = previous


@pytest.mark.usefixtures("monitored")
def test_deployment_page_shows_traffic_drift_performance_alerts() -> None:
    from triptych import deployments
    from triptych.tracking.client import Client

    deployments.set_canary("diabetes", "models:/diabetes/1", 25)
    local = Client()
    with (
        LiveServer(local.store, local.artifacts) as server,
        httpx.Client(base_url=server.url) as ui,
    ):
        listing = ui.get("/ui/deployments").text
        assert 'href="/ui/deployments/diabetes"' in listing and "25 %" in listing
        response = ui.get("/ui/deployments/diabetes")
        assert response.status_code == 200
        html = response.text
        assert "primary 75 %" in html and "canary 25 %" in html
        drift = re.search(r'id="drift-1">(.*?)</script>', html, re.S)
        assert drift and '"title": "share of features drifted"' in drift.group(1)
        assert len(re.search(r'"labels": \[([^\]]*)\]', drift.group(1)).group(1).split(",")) == 3  # type: ignore[union-attr]
        assert 'id="performance"' in html  # live mse from the delayed labels
        assert 'id="alerts"' in html and "drift" in html
        assert "canary" in html[html.index('id="history"') :]  # the trail has the change
        assert ui.get("/ui/deployments/nope").status_code == 404


def test_datasets_and_pipelines_pages(isolated: Path) -> None:
    from triptych.pipelines import runner
    from triptych.tracking.client import Client

    pipeline = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "pipeline.py"
    runner.run(pipeline)
    runner.run(pipeline, params={"train.alpha": 1.0})  # ingest, validate, split: cache hits
    local = Client()
    with (
        LiveServer(local.store, local.artifacts) as server,
        httpx.Client(base_url=server.url) as ui,
    ):
        assert 'href="/ui/datasets/diabetes"' in ui.get("/ui/datasets").text
        html = ui.get("/ui/datasets/diabetes").text
        assert 'id="schema"' in html and "bmi" in html
        hist = re.search(r'id="hist-1">(.*?)</script>', html, re.S)
        assert hist and '"kind": "bars"' in hist.group(1)
        lineage = html[html.index('id="lineage"') :]
        assert lineage.count('href="/ui/runs/') >= 2  # the steps that read the data
        assert "Models trained on it" in html  # (the pipeline trains on its split, not on it)
        assert ui.get("/ui/datasets/diabetes", params={"version": 9}).status_code == 404

        assert 'href="/ui/pipelines/diabetes"' in ui.get("/ui/pipelines").text
        html = ui.get("/ui/pipelines/diabetes").text
        train = re.search(r'<td class="mono">train</td>.*?href="(/ui/runs/\w+)"', html, re.S)
        assert train
        step = ui.get(train.group(1)).text  # a step's run page leads back to its pipeline
        assert 'href="/ui/pipelines/diabetes">diabetes</a> · step' in step
        status = r'<td><span class="status \w+">\w+</span></td>'
        row = rf'<td class="mono">(\w+)</td>\s*{status}\s*<td>(\w+)</td>'
        steps = dict(re.findall(row, html))
        assert steps["ingest"] == "hit" and steps["train"] == "miss", steps
        assert html.count("<rect ") == 6 and html.count('class="step FINISHED cached"') == 3


def test_a_pipeline_name_is_never_a_file_to_run(isolated: Path, world: Any) -> None:
    marker = isolated / "ran"
    evil = isolated / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
    server, _ = world
    with httpx.Client(base_url=server.url) as ui:
        response = ui.get(f"/ui/pipelines/{evil}")
        assert response.status_code == 404
        assert ui.get("/ui/pipelines/evil.py").status_code == 404
    assert not marker.exists()


def test_an_empty_store_renders_every_list(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with LiveServer(store) as server, httpx.Client(base_url=server.url) as ui:
        for path, hint in (
            ("/ui/experiments", "No experiments yet"),
            ("/ui/models", "No registered models yet"),
            ("/ui/deployments", "No deployments yet"),
            ("/ui/datasets", "No datasets yet"),
            ("/ui/pipelines", "No pipeline has run yet"),
        ):
            response = ui.get(path)
            assert response.status_code == 200 and hint in response.text, path
        experiment = store.create_experiment("empty")
        html = ui.get(f"/ui/experiments/{experiment}/runs").text
        assert "No runs match." in html and "no runs" in html
    store.close()
