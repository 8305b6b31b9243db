"""``triptych lineage``: from a logged prediction back to data, code and environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import Ridge

import triptych
from triptych.errors import InvalidInput, NotFound
from triptych.models import registry
from triptych.serving import ids, lineage, predlog
from triptych.serving.predlog import Prediction, PredictionLog


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A model trained in a git checkout on a registered dataset, registered, served once."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "v1")
    (repo / "train.py").write_text("print('v2')\n")  # uncommitted change
    monkeypatch.chdir(repo)
    home = tmp_path / "home"
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))

    frame = pd.DataFrame({"age": [0.1, 0.2, 0.3, 0.4], "bmi": [1.0, 0.5, 0.2, 0.1]})
    frame["target"] = 3 * frame["age"] - frame["bmi"]
    triptych.data.add("diabetes", frame)
    with triptych.start_run(experiment="train", name="ridge") as run:
        triptych.log_input("datasets:/diabetes@1")
        model = Ridge().fit(frame[["age", "bmi"]], frame["target"])
        logged = triptych.log_model(model, input_example=frame[["age", "bmi"]].head(2))
    version = registry.register(logged.uri, "diabetes")
    registry.set_alias("diabetes", "champion", version.version)

    client = triptych.Client()
    serving_run = predlog.start_serving_run("models:/diabetes@champion", client=client)
    plog = PredictionLog(client, serving_run)
    rid = ids.new_request_id()
    plog.record(
        Prediction(
            request_id=rid,
            time_ms=ids.time_of(rid),
            deployment=None,
            variant="primary",
            model_name="diabetes",
            model_version=version.version,
            model_uri=logged.uri,
            inputs=[{"age": 0.1, "bmi": 1.0}],
            outputs=[float(model.predict(frame[["age", "bmi"]].head(1))[0])],
            latency_ms=0.7,
            status=200,
        )
    )
    plog.close()
    return {
        "request_id": rid,
        "run_id": run.run_id,
        "serving_run": serving_run,
        "commit": git(repo, "rev-parse", "HEAD"),
        "model_uri": logged.uri,
        "home": str(home),
        "repo": str(repo),
    }


def test_trace_walks_the_whole_chain(served: dict[str, str]) -> None:
    found = lineage.trace(served["request_id"])
    assert found.problems == []
    assert found.prediction["serving_run_id"] == served["serving_run"]
    assert found.prediction["model_uri"] == served["model_uri"]
    assert found.model is not None
    assert (found.model["name"], found.model["version"]) == ("diabetes", 1)
    assert found.model["aliases"] == ["champion"]
    assert found.run is not None and found.run["run_id"] == served["run_id"]
    assert found.run["experiment"] == "train" and found.run["model_class"].endswith("Ridge")
    [data] = found.data
    assert data["dataset_versions"] == ["datasets:/diabetes@1"] and data["rows"] == 4
    assert found.code is not None
    assert found.code["commit"] == served["commit"] and found.code["branch"] == "main"
    assert found.code["dirty"] is True and found.code["diff_digest"]
    assert found.environment is not None
    assert found.environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found.environment["packages"]["scikit-learn"]
    run = triptych.Client().get_run(served["run_id"])
    assert run.fingerprint is not None
    assert found.run["fingerprint"] == run.fingerprint.digest
    assert found.environment["digest"] == run.fingerprint.env_digest


def test_a_model_served_from_a_run_uri_is_reported_unregistered(served: dict[str, str]) -> None:
    client = triptych.Client()
    serving_run = predlog.start_serving_run(served["model_uri"], client=client)
    plog = PredictionLog(client, serving_run)
    rid = ids.new_request_id()
    plog.record(
        Prediction(
            rid,
            ids.time_of(rid),
            None,
            "primary",
            None,
            None,
            "runs:/" + "f" * 32 + "/m",
            [{"age": 1}],
            [1.0],
            1.0,
            200,
        )
    )
    plog.close()
    found = lineage.trace(rid)
    assert found.model is None and found.run is None
    assert "not available" in found.problems[0]


def test_cli_prints_the_tree_and_json(served: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = served["home"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "triptych", "lineage", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=served["repo"],
        )

    tree = cli(served["request_id"])
    assert tree.returncode == 0, tree.stderr
    for text in (
        served["request_id"],
        "models:/diabetes/1",
        served["run_id"],
        "datasets:/diabetes@1",
        served["commit"][:12],
        "dirty",
        "Python",
    ):
        assert text in tree.stdout, text
    data = json.loads(cli(served["request_id"], "--json").stdout)
    assert data["model"]["uri"] == "models:/diabetes/1"
    assert data["code"]["commit"] == served["commit"]

    missing = cli(ids.new_request_id(int(time.time() * 1000)))
    assert missing.returncode != 0 and "no logged prediction" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = cli("12345")
    assert bad.returncode != 0 and "not a request id" in bad.stderr


def test_trace_refuses_bad_ids_and_unknown_requests() -> None:
    with pytest.raises(InvalidInput):
        lineage.trace("DROP TABLE runs")
    with pytest.raises(NotFound):
        lineage.trace(ids.new_request_id())


def test_lineage_of_a_request_served_by_triptych_serve(tmp_path: Path) -> None:
    """The acceptance path: a real server answers, stops (flushing its log), lineage follows."""
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from serving_kit import ServerProcess, env, make_models, records

    models = make_models(tmp_path / "served")
    server = ServerProcess(models.home, "models:/diabetes@champion")
    try:
        answer = httpx.post(
            f"{server.url}/predict", json={"records": records(models.rows.head(3))}, timeout=10
        ).json()
    finally:
        server.stop()
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "lineage", answer["request_id"], "--json"],
        capture_output=True,
        text=True,
        env=env(models.home),
        cwd=models.home,
    )
    assert done.returncode == 0, done.stderr
    chain = json.loads(done.stdout)
    assert chain["prediction"]["rows"] == 3 and chain["prediction"]["status"] == 200
    assert chain["prediction"]["outputs"] == answer["predictions"]
    assert chain["model"]["uri"] == "models:/diabetes/1" and chain["model"]["aliases"] == [
        "champion"
    ]
    assert chain["run"]["experiment"] == "training"
    assert [d["name"] for d in chain["data"]] == ["diabetes-train"]
    assert chain["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
