"""Request ids and the prediction log, on the real default stores (SQLite + local files)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triptych.errors import InvalidInput, NotFound
from triptych.serving import ids, predlog
from triptych.serving.predlog import Prediction, PredictionLog
from triptych.store.entities import RunSpec, RunStatus
from triptych.tracking.client import Client

HOUR = 3_600_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Client:
    """The default embedded stores, and a real PostgreSQL server."""
    if request.param == "sqlite":
        return Client()
    url = request.getfixturevalue("postgres_url")
    return Client(url, str(tmp_path / "artifacts"))


def serving_run(client: Client, target: str, start_ms: int) -> str:
    """A serving run started at ``start_ms`` (in the past, so records can be dated back)."""
    experiment = client.store.get_or_create_experiment(predlog.SERVING_EXPERIMENT)
    run = client.store.create_run(
        RunSpec(
            experiment.experiment_id,
            name=f"serve {target}",
            start_time=start_ms,
            tags={predlog.TARGET_TAG: target, predlog.PID_TAG: "1"},
            heartbeat_timeout=24 * 3600,  # started "hours ago" without heartbeats: not dead
        )
    )
    return run.run_id


def prediction(time_ms: int, deployment: str | None = "diabetes", **kw: object) -> Prediction:
    fields: dict[str, object] = {
        "request_id": ids.new_request_id(time_ms),
        "time_ms": time_ms,
        "deployment": deployment,
        "variant": "primary",
        "model_name": "diabetes",
        "model_version": 3,
        "model_uri": "runs:/" + "a" * 32 + "/model",
        "inputs": [{"age": 0.05, "bmi": -0.01}],
        "outputs": [151.5],
        "latency_ms": 0.8,
        "status": 200,
    }
    fields.update(kw)
    return Prediction(**fields)  # type: ignore[arg-type]


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def files(client: Client, run_id: str) -> list[str]:
    return [e.path for e in client.store.walk_artifacts(run_id, predlog.PREFIX)]


# -- request ids --------------------------------------------------------------------------------
def test_request_ids_are_uuid7_ordered_by_time() -> None:
    before = int(time.time() * 1000)
    made = [ids.new_request_id() for _ in range(10_000)]
    after = int(time.time() * 1000)
    assert len(set(made)) == len(made)
    for rid in made[:50]:
        assert len(rid) == 32 and rid == rid.lower()
        assert uuid.UUID(rid).version == 7
        assert uuid.UUID(rid).variant == uuid.RFC_4122
        assert before <= ids.time_of(rid) <= after
    early, late = ids.new_request_id(1_000_000), ids.new_request_id(2_000_000)
    assert early < late and ids.time_of(early) == 1_000_000
    # Dashes and capitals, as users paste them, name the same id.
    dashed = str(uuid.UUID(made[0])).upper()
    assert ids.normalise(dashed) == made[0]


def test_request_ids_are_unique_across_processes() -> None:
    code = (
        "from triptych.serving.ids import new_request_id as n; print(*[n() for _ in range(2000)])"
    )
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    made = [rid for out in outs for rid in out.stdout.split()]
    assert len(made) == 4000 and len(set(made)) == 4000


@pytest.mark.parametrize(
    "bad",
    ["", "nope", "0" * 32, uuid.uuid4().hex, "g" * 32, ids.new_request_id()[:-1], "x" * 5000],
)
def test_time_of_refuses_what_is_not_a_request_id(bad: str) -> None:
    with pytest.raises(InvalidInput, match="not a request id"):
        ids.time_of(bad)


# -- writing ------------------------------------------------------------------------------------
def test_records_are_written_by_the_background_thread(client: Client) -> None:
    run_id = predlog.start_serving_run("models:/diabetes@champion", client=client)
    plog = PredictionLog(client, run_id, flush_rows=3, flush_seconds=60)
    try:
        started = time.perf_counter()
        for _ in range(3):
            plog.record(prediction(int(time.time() * 1000)))
        assert time.perf_counter() - started < 0.05  # no I/O on the caller's thread
        # flush_rows reached: the writer thread writes without anyone calling flush().
        wait_for(lambda: plog.written == 3)
        assert len(files(client, run_id)) == 1
        # Below flush_rows, the timer writes: a second log with a short interval.
        quick = PredictionLog(client, run_id, flush_rows=1000, flush_seconds=0.1)
        quick.record(prediction(int(time.time() * 1000)))
        wait_for(lambda: quick.written == 1)
        quick.close()
    finally:
        plog.close()
    run = client.get_run(run_id)
    assert run.tags[predlog.TARGET_TAG] == "models:/diabetes@champion"
    assert run.experiment_id == client.get_experiment_by_name("serving").experiment_id  # type: ignore[union-attr]


def test_files_are_partitioned_by_hour_and_named_by_first_request_id(client: Client) -> None:
    hour = (int(time.time() * 1000) // HOUR - 1) * HOUR  # the previous hour's start
    run_id = serving_run(client, "models:/diabetes/3", hour - 2 * HOUR)
    plog = PredictionLog(client, run_id, flush_seconds=60)
    late = prediction(hour + 100)
    early = prediction(hour - 100)
    earlier = prediction(hour - 200)
    for p in (late, early, earlier):
        plog.record(p)
    plog.close()
    found = sorted(files(client, run_id))
    assert found == sorted(
        [
            f"{predlog.partition(hour - 1)}/part-{earlier.request_id}.parquet",
            f"{predlog.partition(hour)}/part-{late.request_id}.parquet",
        ]
    )
    assert predlog.partition(hour).endswith(time.strftime("hour=%H", time.gmtime(hour / 1000)))
    table = pq.read_table(io.BytesIO(client.read_artifact(run_id, found[0])))
    assert table.column_names == list(predlog.COLUMNS)
    assert table.schema.field("time_ms").type == pa.timestamp("ms", tz="UTC")
    assert table.column("request_id").to_pylist() == [earlier.request_id, early.request_id]


def test_find_by_request_id_across_hours_and_serving_runs(client: Client) -> None:
    now = int(time.time() * 1000)
    first = serving_run(client, "models:/diabetes@champion", now - 3 * HOUR)
    second = serving_run(client, "deployments:/diabetes", now - 3 * HOUR)
    client.set_terminated(first, RunStatus.FINISHED)
    logs = [PredictionLog(client, first), PredictionLog(client, second)]
    made: list[Prediction] = []
    for i in range(60):
        p = prediction(now - 2 * HOUR + i * 2 * 60_000, variant="canary" if i % 3 else "primary")
        made.append(p)
        logs[i % 2].record(p)
        if i % 10 == 9:
            for plog in logs:
                plog.flush()  # several files per hour
    for plog in logs:
        plog.close()
    assert len(files(client, second)) > 3
    for p in [*made[::7], made[-1]]:
        assert predlog.find(p.request_id, client=client) == p
    with pytest.raises(NotFound, match="no logged prediction"):
        predlog.find(ids.new_request_id(now - HOUR), client=client)
    with pytest.raises(InvalidInput):
        predlog.find("../../etc/passwd", client=client)


def test_read_filters_by_run_time_and_deployment(client: Client) -> None:
    now = int(time.time() * 1000)
    a = serving_run(client, "deployments:/a", now - 3 * HOUR)
    b = serving_run(client, "models:/x/1", now - 3 * HOUR)
    log_a, log_b = PredictionLog(client, a), PredictionLog(client, b)
    for i in range(10):
        log_a.record(prediction(now - 2 * HOUR + i * 1000, deployment="a", outputs=[i]))
        log_b.record(prediction(now - 2 * HOUR + i * 1000 + 500, deployment=None))
    log_a.close()
    log_b.close()

    every = predlog.read(client=client)
    assert len(every) == 20 and list(every.columns) == list(predlog.COLUMNS)
    assert every["time_ms"].is_monotonic_increasing
    assert every["inputs"][0] == [{"age": 0.05, "bmi": -0.01}]

    only_a = predlog.read(a, client=client)
    assert len(only_a) == 10 and only_a["outputs"].tolist() == [[i] for i in range(10)]
    assert len(predlog.read(deployment="a", client=client)) == 10
    start = now - 2 * HOUR + 3000
    window = predlog.read(start_ms=start, end_ms=start + 2000, client=client)
    assert len(window) == 4  # 3000, 3500, 4000, 4500: the end is excluded
    assert predlog.read(start_ms=now, client=client).empty
    with pytest.raises(InvalidInput, match="not after"):
        predlog.read(start_ms=now, end_ms=now, client=client)


def test_close_flushes_and_later_records_are_dropped_not_raised(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = predlog.start_serving_run("models:/diabetes@champion", client=client)
    plog = PredictionLog(client, run_id, flush_seconds=3600)
    made = [prediction(int(time.time() * 1000)) for _ in range(25)]
    for p in made:
        plog.record(p)
    assert plog.written == 0
    plog.close()
    assert plog.written == 25 and plog.dropped == 0
    assert sorted(predlog.read(run_id, client=client)["request_id"]) == sorted(
        p.request_id for p in made
    )
    with caplog.at_level(logging.WARNING, logger="triptych.serving.predlog"):
        plog.record(prediction(int(time.time() * 1000)))
    assert plog.dropped == 1 and "closed" in caplog.text
    plog.close()  # twice is fine
    assert plog.written == 25


def test_bad_content_is_counted_and_logged_never_raised(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = predlog.start_serving_run("models:/diabetes@champion", client=client)
    plog = PredictionLog(client, run_id)
    good = prediction(int(time.time() * 1000))
    with caplog.at_level(logging.WARNING, logger="triptych.serving.predlog"):
        plog.record(prediction(int(time.time() * 1000), inputs=[{"x": object()}]))
        plog.record(prediction(int(time.time() * 1000), request_id="not-an-id"))
        plog.record("not a prediction")  # type: ignore[arg-type]
        plog.record(prediction(int(time.time() * 1000), model_version=10**30))
        plog.record(good)
        plog.close()
    assert plog.dropped == 4 and plog.written == 1
    assert "cannot store" in caplog.text
    frame = predlog.read(run_id, client=client)
    assert frame["request_id"].tolist() == [good.request_id]


def test_numpy_values_are_stored_as_json(client: Client) -> None:
    np = pytest.importorskip("numpy")
    run_id = predlog.start_serving_run("models:/m/1", client=client)
    plog = PredictionLog(client, run_id)
    p = prediction(
        int(time.time() * 1000), inputs=[{"x": np.float32(1.5)}], outputs=np.array([2.0, 3.0])
    )
    plog.record(p)
    plog.close()
    found = predlog.find(p.request_id, client=client)
    assert found.inputs == [{"x": 1.5}] and found.outputs == [2.0, 3.0]


def test_concurrent_records_are_each_written_once(client: Client) -> None:
    run_id = predlog.start_serving_run("models:/m/1", client=client)
    plog = PredictionLog(client, run_id, flush_rows=500, flush_seconds=0.05)

    def serve(n: int) -> None:
        for _ in range(n):
            plog.record(prediction(int(time.time() * 1000)))

    threads = [threading.Thread(target=serve, args=(1000,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plog.close()
    frame = predlog.read(run_id, client=client)
    assert plog.written == 8000 and plog.dropped == 0
    assert len(frame) == 8000 and frame["request_id"].is_unique
