"""The scoring server under concurrent load: alias moves, canary split, shadow copies and
micro-batching — real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from serving_kit import (
    Models,
    ServerProcess,
    ServerThread,
    client,
    make_models,
    metric,
    records,
)
from triptych.serving.plan import ServingPlan, goes_to_canary
from triptych.serving.server import ServeOptions, build_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return make_models(tmp_path_factory.mktemp("serving-live"))


@pytest.fixture
def plan_server(models: Models) -> Iterator[Any]:
    """Start an in-process server on a fixed plan; stops it afterwards."""
    started: list[ServerThread] = []

    def start(plan: ServingPlan, **options: Any) -> ServerThread:
        app = build_app(
            ServeOptions(target=plan.primary, poll_interval=0, flush_seconds=0.2, **options),
            client(models.home),
            source=lambda: plan,
        )
        server = ServerThread(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_alias_move_under_load_switches_versions_without_a_failed_request(
    models: Models,
) -> None:
    from triptych.models import registry

    server = ServerProcess(models.home, "models:/diabetes@champion", "--poll-interval", "0.2")
    row = models.rows.head(1)
    body = {"records": records(row)}
    expected = {1: models.ridge.predict(row)[0], 2: models.pipeline.predict(row)[0]}
    answers: list[tuple[float, int, int, float]] = []  # time, status, version, prediction
    stop = threading.Event()

    def post_continuously() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                r = http.post(f"{server.url}/predict", json=body)
                doc = r.json() if r.status_code == 200 else {}
                version = doc.get("model", {}).get("version", -1)
                prediction = doc.get("predictions", [float("nan")])[0]
                answers.append((time.monotonic(), r.status_code, version, prediction))

    threads = [threading.Thread(target=post_continuously) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        moved_at = time.monotonic()
        registry.set_alias("diabetes", "champion", 2, client=client(models.home))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the answers come from version 2
            recent = [a for a in answers[-20:] if a[0] > moved_at]
            if len(recent) == 20 and all(a[2] == 2 for a in recent):
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.stop()
        registry.set_alias("diabetes", "champion", 1, client=client(models.home))
    statuses = Counter(a[1] for a in answers)
    assert statuses == Counter({200: len(answers)}), statuses
    versions = [a[2] for a in answers]
    assert versions[0] == 1 and versions[-1] == 2
    assert versions.count(1) > 20 and versions.count(2) > 20
    for _, _, version, prediction in answers:  # every answer is its version's prediction
        assert prediction == pytest.approx(expected[version])
    switch = min(a[0] for a in answers if a[2] == 2)
    assert switch - moved_at < 10  # poll interval 0.2 s + loading


def test_canary_answers_its_share_decided_by_the_request_id(
    models: Models, plan_server: Any
) -> None:
    plan = ServingPlan("models:/diabetes/1", canary="models:/diabetes/2", canary_weight=30)
    server = plan_server(plan)
    rows = models.rows.head(1)
    body = {"records": records(rows)}
    versions: Counter[int] = Counter()
    with httpx.Client(timeout=30) as http:
        for _ in range(2000):
            doc = http.post(f"{server.url}/predict", json=body).json()
            version = doc["model"]["version"]
            versions[version] += 1
            assert (version == 2) == goes_to_canary(doc["request_id"], 30)
        metrics = http.get(f"{server.url}/metrics").text
    share = versions[2] / 2000
    assert 0.26 <= share <= 0.34, versions  # 30 % +- 4 standard deviations
    assert metric(metrics, "triptych_requests_total", variant="canary", status="200") == versions[2]
    stats = server.app.service.telemetry.stats()
    assert (stats["canary"].requests, stats["canary"].errors) == (versions[2], 0)
    assert stats["primary"].requests == versions[1]


def test_shadow_never_changes_answers_and_its_predictions_are_logged(
    models: Models, plan_server: Any
) -> None:
    from triptych.serving import predlog

    plan = ServingPlan("models:/diabetes/1", shadow="models:/diabetes/3")
    server = plan_server(plan)
    rows = models.rows.head(40)
    ids = []
    with httpx.Client(timeout=30) as http:
        for i in range(40):
            row = rows.iloc[i : i + 1]
            doc = http.post(f"{server.url}/predict", json={"records": records(row)}).json()
            assert doc["model"]["version"] == 1
            assert doc["predictions"][0] == pytest.approx(models.ridge.predict(row)[0])
            ids.append(doc["request_id"])
    lifecycle = server.app.lifecycle
    run_id = lifecycle.run_id
    server.stop()  # flushes the shadow queue and the prediction log
    logged = predlog.read(run_id, client=client(models.home))
    shadow = logged[logged["variant"] == "shadow"].set_index("request_id")
    primary = logged[logged["variant"] == "primary"].set_index("request_id")
    assert set(shadow.index) == set(ids) == set(primary.index)
    for i, request_id in enumerate(ids):
        row = rows.iloc[i : i + 1]
        assert shadow.loc[request_id, "model_version"] == 3
        assert shadow.loc[request_id, "outputs"] == pytest.approx(models.v3.predict(row).tolist())
        assert primary.loc[request_id, "outputs"] == pytest.approx(
            models.ridge.predict(row).tolist()
        )


def test_a_failing_shadow_never_reaches_the_client(models: Models, plan_server: Any) -> None:
    import pandas as pd

    plan = ServingPlan("models:/cities/2", shadow="models:/cities/1")  # v1 fails on new cities
    server = plan_server(plan)
    row = {"city": "atlantis", "size": 1.0}
    with httpx.Client(timeout=30) as http:
        answer = http.post(f"{server.url}/predict", json={"records": [row]})
        assert answer.status_code == 200
        expected = models.lenient.predict(pd.DataFrame([row]))
        assert answer.json()["predictions"] == pytest.approx(expected.tolist())
        deadline = time.monotonic() + 10
        while server.app.service.shadow.scored < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = http.get(f"{server.url}/metrics").text
    assert metric(metrics, "triptych_requests_total", variant="shadow", status="500") == 1


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    models: Models, plan_server: Any
) -> None:
    server = plan_server(ServingPlan("models:/diabetes/1"), log_predictions=False)
    rows = models.rows
    expected = models.ridge.predict(rows)
    failures: list[str] = []

    def worker(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            for k in range(60):
                i = (offset * 7 + k) % len(rows)
                r = http.post(f"{server.url}/predict", json={"data": [rows.iloc[i].tolist()]})
                got = r.json()["predictions"][0]
                if not np.isclose(got, expected[i], rtol=1e-12):
                    failures.append(f"row {i}: {got} != {expected[i]}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    batcher = server.app.service.slots.routing.primary.scorer.batcher
    assert batcher.items == 480
    assert batcher.calls < batcher.items  # some requests shared a predict call


def test_a_failing_canary_is_rolled_back_automatically(models: Models) -> None:
    from triptych import deployments

    c = client(models.home)
    deployments.create(
        "cities-live",
        "models:/cities/2",
        canary="models:/cities/1",  # fails on cities it never saw
        weight=50,
        thresholds={"max_error_rate": 0.1, "min_requests": 20},
        client=c,
    )
    server = ServerProcess(models.home, "deployments:/cities-live", "--poll-interval", "0.2")
    body = {"records": [{"city": "atlantis", "size": 1.0}]}
    statuses: list[tuple[int, int | None]] = []
    try:
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = http.post(f"{server.url}/predict", json=body)
                version = r.json()["model"]["version"] if r.status_code == 200 else None
                statuses.append((r.status_code, version))
                if len(statuses) > 60 and all(s == (200, 2) for s in statuses[-40:]):
                    break
                time.sleep(0.005)
            meta = http.get(f"{server.url}/metadata").json()
    finally:
        server.stop()
    assert any(s == 500 for s, _ in statuses)  # the canary failed some requests ...
    assert all(s == (200, 2) for s in statuses[-40:])  # ... then the primary took them all
    assert meta["plan"]["canary"] is None
    assert meta["deployment"] == "cities-live"
    record = deployments.get("cities-live", client=c)
    assert record.canary is None
    last = deployments.history("cities-live", client=c)[-1]
    assert (last.actor, last.action) == ("auto", "canary")  # it came with the creation
    assert "error rate" in (last.reason or "")


def test_a_deployment_change_is_picked_up_without_restart(models: Models) -> None:
    from triptych import deployments

    c = client(models.home)
    deployments.create("diabetes-live", "models:/diabetes/1", client=c)
    server = ServerProcess(models.home, "deployments:/diabetes-live", "--poll-interval", "0.2")
    body = {"records": records(models.rows.head(1))}
    try:
        with httpx.Client(timeout=30) as http:
            assert http.post(f"{server.url}/predict", json=body).json()["model"]["version"] == 1
            deployments.set_canary("diabetes-live", "models:/diabetes/3", 100, client=c)
            deadline = time.monotonic() + 30
            version = 1
            while version != 3 and time.monotonic() < deadline:
                version = http.post(f"{server.url}/predict", json=body).json()["model"]["version"]
                time.sleep(0.05)
    finally:
        server.stop()
    assert version == 3


def test_several_workers_each_keep_a_serving_run(models: Models) -> None:
    from triptych.serving.predlog import serving_runs

    c = client(models.home)
    before = {r.run_id for r in serving_runs(client=c)}
    server = ServerProcess(models.home, "models:/diabetes/1", "--workers", "2")
    body = {"records": records(models.rows.head(1))}
    try:
        with httpx.Client(timeout=30) as http:
            for _ in range(20):
                assert http.post(f"{server.url}/predict", json=body).status_code == 200
    finally:
        server.stop()
    new = [r for r in serving_runs(client=client(models.home)) if r.run_id not in before]
    assert len(new) == 2
    assert len({r.tags["triptych.serving.pid"] for r in new}) == 2
    assert all(r.status.value == "FINISHED" for r in new)


def test_a_request_that_fails_in_a_batch_fails_alone(models: Models, plan_server: Any) -> None:
    import pandas as pd

    server = plan_server(ServingPlan("models:/cities/1"), log_predictions=False)
    cities = ["rome", "paris", "oslo", "atlantis"]  # the model never saw atlantis
    results: list[tuple[str, int, Any]] = []

    def worker(n: int) -> None:
        with httpx.Client(timeout=30) as http:
            for k in range(40):
                city = cities[(n + k) % 4]
                r = http.post(
                    f"{server.url}/predict", json={"records": [{"city": city, "size": 2.0}]}
                )
                results.append((city, r.status_code, r.json().get("predictions")))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for city, status, predictions in results:
        if city == "atlantis":
            assert status == 500
        else:
            assert status == 200
            expected = models.cities.predict(pd.DataFrame([{"city": city, "size": 2.0}]))
            assert predictions == pytest.approx(expected.tolist())
    batcher = server.app.service.slots.routing.primary.scorer.batcher
    assert batcher.items > 320  # failed batches were retried request by request
