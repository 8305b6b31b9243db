"""``triptych serve``: the three input formats, every 4xx, a failing model, the endpoints, the
prediction log and the serving run — against a real server process on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from serving_kit import Models, ServerProcess, client, make_models, metric, records
from triptych.store.entities import RunStatus

pytestmark = pytest.mark.slow
LIMIT = 200_000  # the body-size limit the test server runs with


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return make_models(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def server(models: Models) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        models.home,
        "models:/diabetes@champion",
        "--max-body-size",
        str(LIMIT),
        "--poll-interval",
        "0",
    )
    yield proc
    proc.stop()


def _post(server: ServerProcess, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=30)


def test_the_three_input_formats_give_the_models_predictions(
    server: ServerProcess, models: Models
) -> None:
    rows = models.rows.head(3)
    expected = models.ridge.predict(rows).tolist()
    columns = models.columns
    bodies = [
        {"records": records(rows)},
        {"columns": columns, "data": rows.to_numpy().tolist()},
        {"columns": columns[::-1], "data": rows[columns[::-1]].to_numpy().tolist()},
        {"data": rows.to_numpy().tolist()},
    ]
    for body in bodies:
        answer = _post(server, body)
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        assert np.allclose(doc["predictions"], expected, rtol=1e-12)
        assert doc["model"]["name"] == "diabetes"
        assert doc["model"]["version"] == 1
        assert doc["model"]["uri"].startswith("runs:/")
        assert re.fullmatch(r"[0-9a-f]{32}", doc["request_id"])
        assert answer.headers["x-request-id"] == doc["request_id"]


def test_ints_are_accepted_for_float_columns(server: ServerProcess, models: Models) -> None:
    row = {c: 0 for c in models.columns}
    answer = _post(server, {"records": [row]})
    assert answer.status_code == 200
    expected = models.ridge.predict(models.rows.head(1) * 0)[0]
    assert answer.json()["predictions"][0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        (lambda r: r.pop("bmi"), ["records", 0, "bmi"], "missing"),
        (lambda r: r.update(bmi="fat"), ["records", 0, "bmi"], "type"),
        (lambda r: r.update(bmi=None), ["records", 0, "bmi"], "null"),
        (lambda r: r.update(bmi=True), ["records", 0, "bmi"], "type"),
        (lambda r: r.update(bmi=[1.0]), ["records", 0, "bmi"], "type"),
    ],
)
def test_invalid_records_get_422_naming_the_field(
    server: ServerProcess, models: Models, change: Any, loc: list[Any], kind: str
) -> None:
    row = records(models.rows.head(1))[0]
    change(row)
    answer = _post(server, {"records": [records(models.rows.head(1))[0], row]})
    assert answer.status_code == 422, answer.text
    doc = answer.json()
    loc = [loc[0], 1, *loc[2:]]  # the second record is the bad one
    assert [e["loc"] for e in doc["detail"]] == [loc]
    assert doc["detail"][0]["type"] == kind
    assert doc["request_id"] == answer.headers["x-request-id"]


def test_wrong_row_length_and_missing_columns_in_split_form(
    server: ServerProcess, models: Models
) -> None:
    good = models.rows.head(1).to_numpy().tolist()[0]
    answer = _post(server, {"data": [good, good[:-1]]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["data", 1]
    assert answer.json()["detail"][0]["type"] == "row_length"

    answer = _post(server, {"columns": models.columns[:-1], "data": [good[:-1]]})
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"loc": ["columns"], "msg": f"missing column {models.columns[-1]!r}", "type": "missing"}
    ]


def test_every_bad_value_is_reported_at_once(server: ServerProcess, models: Models) -> None:
    row = records(models.rows.head(1))[0]
    row.update(age="old", sex=None)
    answer = _post(server, {"records": [row]})
    assert answer.status_code == 422
    assert {e["loc"][-1] for e in answer.json()["detail"]} == {"age", "sex"}


@pytest.mark.parametrize(
    "body",
    [[1, 2], {"rows": []}, {"records": []}, {"records": "x"}, {"data": [[]] * 0}, {"data": 3}],
)
def test_bodies_of_the_wrong_shape_get_422(server: ServerProcess, body: Any) -> None:
    answer = _post(server, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_malformed_json_gets_400(server: ServerProcess) -> None:
    for content in (b'{"records": [', b"NaN", b'{"data": [[NaN]]}', b"\xff\xfe"):
        answer = httpx.post(
            f"{server.url}/predict", content=content, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, content
        assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_bodies_over_the_limit_get_413_also_when_streamed(
    server: ServerProcess, models: Models
) -> None:
    row = models.rows.head(1).to_numpy().tolist()[0]
    big = {"data": [row] * (LIMIT // 100)}
    assert _post(server, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is checked while reading
        yield b'{"data": ['
        for _ in range(LIMIT // 1000 + 10):
            yield b"[" + b"1.0," * 249 + b"1.0],"
        yield b"[1.0]]}"

    answer = httpx.post(
        f"{server.url}/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert "limit" in answer.json()["error"]
    assert _post(server, {"data": [row]}).status_code == 200  # the server is fine


def test_other_content_types_get_415_and_are_never_unpickled(
    server: ServerProcess, tmp_path: Path
) -> None:
    import pickle

    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    payload = pickle.dumps(Evil())
    for content_type in ("application/octet-stream", "application/python-pickle", "text/plain"):
        answer = httpx.post(
            f"{server.url}/predict", content=payload, headers={"content-type": content_type}
        )
        assert answer.status_code == 415
        assert "application/json" in answer.json()["error"]
    answer = httpx.post(f"{server.url}/predict", content=b'{"data": [[1]]}')  # no content type
    assert answer.status_code == 415
    assert not marker.exists()


def test_unknown_routes_and_methods(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/nope").status_code == 404
    answer = httpx.get(f"{server.url}/predict")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert httpx.post(f"{server.url}/metadata", json={}).status_code == 405


def test_health_ready_and_metadata(server: ServerProcess, models: Models) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").status_code == 200
    meta = httpx.get(f"{server.url}/metadata").json()
    assert (meta["name"], meta["version"], meta["address"]) == (
        "diabetes",
        1,
        "models:/diabetes@champion",
    )
    assert [c["name"] for c in meta["signature"]["inputs"]] == models.columns
    run = client(models.home).get_run(meta["fingerprint"]["run_id"])
    assert run.fingerprint is not None
    assert meta["fingerprint"]["digest"] == run.fingerprint.digest
    assert meta["fingerprint"]["data"][0]["name"] == "diabetes-train"
    assert meta["serving_run_id"]


def test_openapi_is_generated_from_the_signature(server: ServerProcess, models: Models) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]
    assert list(record["properties"]) == models.columns
    assert record["properties"]["bmi"] == {"type": "number"}
    assert record["required"] == models.columns
    assert {"200", "400", "413", "415", "422", "500"} <= set(
        doc["paths"]["/predict"]["post"]["responses"]
    )


def test_metrics_count_requests_latency_errors_and_version(
    server: ServerProcess, models: Models
) -> None:
    assert _post(server, {"data": models.rows.head(1).to_numpy().tolist()}).status_code == 200
    assert _post(server, {"records": [{}]}).status_code == 422
    text = httpx.get(f"{server.url}/metrics").text
    assert (metric(text, "triptych_requests_total", variant="primary", status="200") or 0) >= 1
    assert (metric(text, "triptych_requests_total", variant="primary", status="422") or 0) >= 1
    bucket = {"variant": "primary", "le": "0.001"}
    assert metric(text, "triptych_request_latency_seconds_bucket", **bucket) is not None
    assert (metric(text, "triptych_errors_total", code="invalid_input") or 0) >= 1
    assert metric(text, "triptych_model_version", variant="primary", model="diabetes") == 1
    assert metric(text, "triptych_variant_p99_seconds", variant="primary") is not None


def test_a_failing_model_gives_500_with_the_request_id_logged(models: Models) -> None:
    server = ServerProcess(models.home, "models:/cities/1", "--poll-interval", "0")
    try:
        good = httpx.post(
            f"{server.url}/predict", json={"records": [{"city": "rome", "size": 2.0}]}
        )
        assert good.status_code == 200
        expected = models.cities.predict(pd.DataFrame([{"city": "rome", "size": 2.0}]))
        assert good.json()["predictions"] == pytest.approx(expected.tolist())
        assert (
            httpx.post(
                f"{server.url}/predict", json={"records": [{"city": 3, "size": 2.0}]}
            ).status_code
            == 422
        )
        bad = httpx.post(
            f"{server.url}/predict", json={"records": [{"city": "atlantis", "size": 1.0}]}
        )
        assert bad.status_code == 500
        request_id = bad.headers["x-request-id"]
        assert bad.json()["request_id"] == request_id
        assert "atlantis" not in bad.text  # the model's error stays in the server log
        assert (
            httpx.post(  # and the server keeps serving
                f"{server.url}/predict", json={"records": [{"city": "oslo", "size": 2.0}]}
            ).status_code
            == 200
        )
    finally:
        log = server.stop()
    assert request_id in log
    assert "Traceback" in log and "atlantis" in log


def test_every_answer_is_in_the_prediction_log_of_the_serving_run(models: Models) -> None:
    from triptych.serving import predlog

    server = ServerProcess(models.home, "models:/diabetes/2", "--poll-interval", "0")
    rows = models.rows.head(2)
    try:
        ok = httpx.post(f"{server.url}/predict", json={"records": records(rows)})
        bad = httpx.post(f"{server.url}/predict", json={"records": [{"age": 1}]})
        run_id = httpx.get(f"{server.url}/metadata").json()["serving_run_id"]
    finally:
        server.stop()
    c = client(models.home)
    run = c.get_run(run_id)
    assert run.status is RunStatus.FINISHED
    assert run.tags["triptych.serving.target"] == "models:/diabetes/2"
    logged = predlog.read(run_id, client=c).set_index("request_id")
    good = logged.loc[ok.headers["x-request-id"]]
    assert good["status"] == 200
    assert (good["model_name"], good["model_version"], good["variant"]) == (
        "diabetes",
        2,
        "primary",
    )
    assert good["inputs"] == records(rows)
    assert np.allclose(good["outputs"], models.pipeline.predict(rows))
    assert good["latency_ms"] > 0
    refused = logged.loc[bad.headers["x-request-id"]]
    assert refused["status"] == 422
    assert "missing column" in refused["error"]
    assert predlog.find(ok.headers["x-request-id"], client=c).outputs == ok.json()["predictions"]


def test_serving_an_unknown_model_fails_with_one_line(models: Models) -> None:
    import subprocess
    import sys

    from serving_kit import env

    done = subprocess.run(
        [sys.executable, "-m", "triptych", "serve", "models:/nope@champion", "--port", "1"],
        cwd=models.home,
        env=env(models.home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_a_taken_port_fails_with_one_line_before_loading(models: Models) -> None:
    import socket
    import subprocess
    import sys

    from serving_kit import env

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "triptych", "serve", "models:/diabetes/1", "--port", str(port)],
            cwd=models.home,
            env=env(models.home),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
