"""MLflow's own client against a real ``triptych server`` on loopback: its fluent API and
``mlflow.sklearn.autolog()`` write params, metrics, tags, artifacts, a logged and registered
model and an alias; both MLflow's client and triptych's read them back."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from triptych.testing.process import free_port

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None,
    reason="needs MLflow: pip install 'triptych[mlflow]'",
)

# MLflow's client runs in its own process: its warnings and global state stay out of pytest.
CLIENT_SCRIPT = r"""
import json, os, sys, tempfile
import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression, Ridge

out = {}
mlflow.set_experiment("compat")
with mlflow.start_run(run_name="fluent") as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({"solver": "lbfgs", "depth": 3})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"auc": 0.9, "f1": 0.8})
    mlflow.set_tag("team", "ds")
    mlflow.set_tags({"stage": "dev"})
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "notes.txt")
    with open(path, "w") as f:
        f.write("hello triptych")
    mlflow.log_artifact(path, artifact_path="docs")
    mlflow.log_dict({"a": 1}, "config.json")
    model = Ridge(alpha=0.5).fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="ridge-compat")
out["run_id"] = run.info.run_id
out["model_id"] = info.model_id
client = MlflowClient()
client.set_registered_model_alias("ridge-compat", "champion", "1")
out["alias_version"] = client.get_model_version_by_alias("ridge-compat", "champion").version
got = client.get_run(run.info.run_id)
out["params"] = got.data.params
out["metrics"] = got.data.metrics
out["tags"] = {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")}
out["status"] = got.info.status
out["history"] = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")]
out["artifacts"] = sorted(a.path for a in client.list_artifacts(run.info.run_id))
out["docs"] = sorted(a.path for a in client.list_artifacts(run.info.run_id, "docs"))
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="docs/notes.txt")
out["notes"] = open(local).read()
loaded = mlflow.sklearn.load_model("models:/ridge-compat@champion")
out["prediction"] = float(loaded.predict(np.array([[1.0, 2.0]]))[0])
out["expected"] = float(model.predict(np.array([[1.0, 2.0]]))[0])
mv = client.get_model_version("ridge-compat", "1")
out["mv"] = {"run_id": mv.run_id, "source": mv.source, "aliases": list(mv.aliases)}
found = mlflow.search_runs(experiment_names=["compat"], filter_string="metrics.auc > 0.5")
out["search"] = len(found)
# autolog
mlflow.sklearn.autolog()
with mlflow.start_run(run_name="autolog") as auto:
    LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
mlflow.sklearn.autolog(disable=True)
a = client.get_run(auto.info.run_id)
out["auto_run_id"] = auto.info.run_id
out["auto_params"] = sorted(a.data.params)
out["auto_metrics"] = sorted(a.data.metrics)
out["auto_models"] = [m.model_id for m in (a.outputs.model_outputs if a.outputs else [])]
exp = client.get_experiment_by_name("compat")
client.delete_run(auto.info.run_id)
out["deleted_search"] = len(client.search_runs([exp.experiment_id]))
client.restore_run(auto.info.run_id)
out["experiments"] = [e.name for e in client.search_experiments()]
print("RESULT " + json.dumps(out))
"""


# More of the client: nested and resumed runs, filters, registry operations.
EXTRA_SCRIPT = r"""
import json
import mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import Ridge
c = MlflowClient()
out = {}
mlflow.set_experiment("extra")
with mlflow.start_run(run_name="outer") as outer:
    with mlflow.start_run(run_name="inner", nested=True) as inner:
        mlflow.log_metric("x", 1)
parent = c.get_run(inner.info.run_id).data.tags.get("mlflow.parentRunId")
out["parent"] = parent == outer.info.run_id
with mlflow.start_run(run_id=inner.info.run_id):  # resumed
    mlflow.log_metric("x", 2, step=1)
out["resumed"] = [m.value for m in c.get_metric_history(inner.info.run_id, "x")]
mlflow.start_run(run_name="bad")
mlflow.end_run(status="FAILED")
exp = mlflow.get_experiment_by_name("extra")
ids = [exp.experiment_id]
out["by_name"] = len(mlflow.search_runs(ids, filter_string="attributes.run_name = 'outer'"))
out["order"] = [r.info.run_name for r in c.search_runs(ids, order_by=["attributes.start_time ASC"])]
out["failed"] = [r.info.run_name for r in c.search_runs(ids, "attributes.status = 'FAILED'")]
out["by_tag"] = len(c.search_runs(ids, filter_string="tags.`mlflow.runName` = 'outer'"))
c.rename_experiment(exp.experiment_id, "extra2")
out["renamed"] = c.get_experiment(exp.experiment_id).name
with mlflow.start_run(experiment_id=exp.experiment_id) as r:
    mlflow.sklearn.log_model(Ridge().fit(np.ones((3, 2)), [1, 2, 3]), name="m")
mlflow.register_model(f"runs:/{r.info.run_id}/m", "extra-model")  # resolved to the logged model
mlflow.register_model(f"models:/{mlflow.last_logged_model().model_id}", "extra-model")
out["versions"] = [v.version for v in c.search_model_versions("name='extra-model'")]
out["pyfunc"] = mlflow.pyfunc.load_model("models:/extra-model/2").predict(np.ones((1, 2))).tolist()
c.set_registered_model_alias("extra-model", "prod", 1)
c.delete_registered_model_alias("extra-model", "prod")
out["aliases"] = c.get_registered_model("extra-model").aliases
c.delete_model_version("extra-model", 1)
out["after_delete"] = [v.version for v in c.search_model_versions("name='extra-model'")]
c.delete_experiment(exp.experiment_id)
out["deleted"] = c.get_experiment(exp.experiment_id).lifecycle_stage
c.restore_experiment(exp.experiment_id)


def code(call):
    try:
        call()
    except mlflow.exceptions.MlflowException as e:
        return e.error_code
    return None


# tags of runs and experiments after the fact
c.set_tag(outer.info.run_id, "temp", "1")
c.delete_tag(outer.info.run_id, "temp")
out["run_tags"] = sorted(k for k in c.get_run(outer.info.run_id).data.tags if k == "temp")
out["delete_tag_again"] = code(lambda: c.delete_tag(outer.info.run_id, "temp"))
c.set_experiment_tag(exp.experiment_id, "goal", "churn")
c.set_experiment_tag(exp.experiment_id, "owner", "ana")
c.delete_experiment_tag(exp.experiment_id, "owner")
out["experiment_tags"] = c.get_experiment(exp.experiment_id).tags
# a registered model made empty, with its description and tags
c.create_registered_model("empty-model", tags={"team": "ds", "x": "1"}, description="planned")
m = c.get_registered_model("empty-model")
out["created"] = [m.description, m.tags, len(m.latest_versions or [])]
c.set_registered_model_tag("empty-model", "owner", "ana")
c.delete_registered_model_tag("empty-model", "x")
c.delete_registered_model_tag("empty-model", "never-set")  # no error, as in MLflow
c.update_registered_model("empty-model", description="now described")
m = c.get_registered_model("empty-model")
out["updated"] = [m.description, m.tags]
out["by_tag_search"] = [m.name for m in c.search_registered_models("tags.team = 'ds'")]
out["taken"] = code(lambda: c.create_registered_model("empty-model"))
# model-version tags, rename (aliases and versions follow), stages
c.set_model_version_tag("extra-model", "2", "quality", "good")
c.set_model_version_tag("extra-model", "2", "temp", "1")
c.delete_model_version_tag("extra-model", "2", "temp")
out["version_tags"] = c.get_model_version("extra-model", "2").tags
c.set_registered_model_alias("extra-model", "prod", 2)
c.rename_registered_model("extra-model", "renamed-model")
out["renamed_model"] = [v.name for v in c.search_model_versions("name='renamed-model'")]
out["by_alias"] = c.get_model_version_by_alias("renamed-model", "prod").version
out["renamed_pyfunc"] = (
    mlflow.pyfunc.load_model("models:/renamed-model@prod").predict(np.ones((1, 2))).tolist()
)
out["old_name"] = code(lambda: c.get_registered_model("extra-model"))
out["rename_onto"] = code(lambda: c.rename_registered_model("renamed-model", "empty-model"))
out["rename_missing"] = code(lambda: c.rename_registered_model("nope", "nope2"))
out["stage"] = code(lambda: c.transition_model_version_stage("renamed-model", "2", "Production"))
c.delete_registered_model("empty-model")
out["deleted_model"] = code(lambda: c.get_registered_model("empty-model"))
c.create_registered_model("empty-model")  # the name is free again
out["models"] = sorted(m.name for m in c.search_registered_models())
print("RESULT " + json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIPTYCH_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


@contextlib.contextmanager
def _serve(folder: Path, *args: str) -> Iterator[str]:
    """A real ``triptych server`` on a free loopback port over a fresh store in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "triptych", "server", "--port", str(port),
         "--store", f"sqlite:///{folder / 'team.db'}", "--artifacts", str(folder / "artifacts"),
         *args],
        cwd=folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError(f"the server exited: {process.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve(tmp_path_factory.mktemp("server")) as url:
        yield url


def _client(server: str, script: str, folder: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder, env={**_env(), "MLFLOW_TRACKING_URI": server, **env},
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def logged(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _client(server, CLIENT_SCRIPT, tmp_path_factory.mktemp("client"))


def test_mlflow_reads_back_what_it_logged(logged: dict[str, Any]) -> None:
    assert logged["params"] == {"alpha": "0.5", "solver": "lbfgs", "depth": "3"}
    assert logged["metrics"] == {"loss": 0.2, "auc": 0.9, "f1": 0.8}
    assert logged["tags"] == {"team": "ds", "stage": "dev"}
    assert logged["status"] == "FINISHED"
    # Every point once, although log_model logs the run's step-0 points again for the model.
    assert logged["history"] == [[s, pytest.approx(1 / (s + 1))] for s in range(5)]
    assert logged["artifacts"] == ["config.json", "docs", "models"]
    assert logged["docs"] == ["docs/notes.txt"] and logged["notes"] == "hello triptych"
    assert logged["alias_version"] == "1" and logged["mv"]["aliases"] == ["champion"]
    assert logged["mv"]["run_id"] == logged["run_id"]
    assert logged["mv"]["source"] == f"models:/{logged['model_id']}"
    assert logged["prediction"] == pytest.approx(logged["expected"])  # loaded by alias
    assert logged["search"] == 1
    assert "fit_intercept" in logged["auto_params"]
    assert "training_r2_score" in logged["auto_metrics"]
    assert len(logged["auto_models"]) == 1
    assert logged["deleted_search"] == 1 and logged["experiments"] == ["compat"]


def test_triptych_reads_what_mlflow_logged(server: str, logged: dict[str, Any]) -> None:
    from triptych.tracking.client import Client

    client = Client(server, server)
    run = client.get_run(logged["run_id"])
    assert run.name == "fluent" and run.status.value == "FINISHED"
    assert dict(run.params) == {"alpha": "0.5", "solver": "lbfgs", "depth": "3"}
    assert run.metrics["auc"] == pytest.approx(0.9) and run.tags["team"] == "ds"
    assert [m.step for m in client.get_metric_history(run.run_id, "loss")] == list(range(5))
    assert client.read_artifact(run.run_id, "docs/notes.txt") == b"hello triptych"
    assert json.loads(client.read_artifact(run.run_id, "config.json")) == {"a": 1}
    files = {e.path for e in client.store.walk_artifacts(run.run_id, "models")}
    assert f"models/{logged['model_id']}/MLmodel" in files
    version = client.store.get_model_version("ridge-compat", alias="champion")
    assert version.version == 1 and version.run_id == run.run_id
    assert version.source == f"runs:/{run.run_id}/models/{logged['model_id']}"
    experiment = client.get_experiment_by_name("compat")
    assert experiment is not None and experiment.experiment_id == run.experiment_id
    auto = client.get_run(logged["auto_run_id"])
    assert auto.lifecycle.value == "active" and "training_score" in auto.metrics


def test_errors_take_mlflows_shape(server: str) -> None:
    answer = httpx.get(f"{server}/api/2.0/mlflow/runs/get", params={"run_id": "0" * 32})
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    answer = httpx.post(f"{server}/api/2.0/mlflow/experiments/create", json={"name": "compat"})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    answer = httpx.post(
        f"{server}/api/2.0/mlflow/runs/log-metric", json={"run_id": "x", "key": "m"}
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_import_from_an_mlflow_api_over_http(
    server: str, logged: dict[str, Any], tmp_path: Path
) -> None:
    """``triptych import mlflow --from http://…`` reads through MLflow's REST client; here the
    MLflow API is triptych's own, so what MLflow's client logged is copied to a second store."""
    env = {
        **_env(),
        "TRIPTYCH_TRACKING_URI": f"sqlite:///{tmp_path / 'copy.db'}",
        "TRIPTYCH_ARTIFACT_URI": str(tmp_path / "copy-artifacts"),
    }
    command = [sys.executable, "-m", "triptych", "import", "mlflow", "--from", server, "--json"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=280)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["runs_imported"] == 2 and report["model_versions_imported"] == 1
    assert report["aliases_set"] == 1 and report["warnings"] == []

    from triptych.tracking.client import Client

    copy = Client(env["TRIPTYCH_TRACKING_URI"], env["TRIPTYCH_ARTIFACT_URI"])
    run = copy.get_run(logged["run_id"])
    assert dict(run.params) == {"alpha": "0.5", "solver": "lbfgs", "depth": "3"}
    assert [m.step for m in copy.get_metric_history(run.run_id, "loss")] == list(range(5))
    assert copy.read_artifact(run.run_id, "docs/notes.txt") == b"hello triptych"
    version = copy.store.get_model_version("ridge-compat", alias="champion")
    assert version.run_id == run.run_id
    path = version.source.split("/", 2)[2]  # runs:/<run>/<path>
    assert f"{path}/MLmodel" in {e.path for e in copy.store.walk_artifacts(run.run_id, path)}

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=280)  # fmt: skip
    assert json.loads(again.stdout)["runs_imported"] == 0


@pytest.fixture(scope="module")
def extra(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """EXTRA_SCRIPT against a server of its own (the searches above stay exact), and what
    triptych's own client then reads of the registry."""
    from triptych.tracking.client import Client

    folder = tmp_path_factory.mktemp("extra")
    with _serve(folder / "server") as url:
        got = _client(url, EXTRA_SCRIPT, folder)
        client = Client(url, url)
        got["triptych"] = (
            client.store.get_registered_model("renamed-model"),
            client.store.model_history("renamed-model"),
            client.get_experiment_by_name("extra2"),
        )
        client.store.close()
    return got


def test_more_of_the_client(extra: dict[str, Any]) -> None:
    got = extra
    assert got["parent"] is True and got["resumed"] == [1.0, 2.0]
    assert got["by_name"] == 1 and got["by_tag"] == 1 and got["failed"] == ["bad"]
    assert got["order"] == ["outer", "inner", "bad"] and got["renamed"] == "extra2"
    assert got["versions"] == ["2", "1"] and got["pyfunc"] == [pytest.approx(2.0)]
    assert got["aliases"] == {} and got["after_delete"] == ["2"]
    assert got["deleted"] == "deleted"


def test_tags_descriptions_and_renames_through_mlflows_client(extra: dict[str, Any]) -> None:
    """What MLflow's client sets after creation (tags of runs, experiments, models and
    versions; a model's description; its name) is kept, and reads back on both sides."""
    got = extra
    assert got["run_tags"] == [] and got["delete_tag_again"] == "RESOURCE_DOES_NOT_EXIST"
    assert got["experiment_tags"] == {"goal": "churn"}
    assert got["created"] == ["planned", {"team": "ds", "x": "1"}, 0]
    assert got["updated"] == ["now described", {"team": "ds", "owner": "ana"}]
    assert got["by_tag_search"] == ["empty-model"] and got["taken"] == "RESOURCE_ALREADY_EXISTS"
    assert got["version_tags"] == {"quality": "good"}
    assert got["renamed_model"] == ["renamed-model"] and got["by_alias"] == "2"
    assert got["renamed_pyfunc"] == [pytest.approx(2.0)]
    assert got["old_name"] == "RESOURCE_DOES_NOT_EXIST"
    assert got["rename_onto"] == "RESOURCE_ALREADY_EXISTS"
    assert got["rename_missing"] == "RESOURCE_DOES_NOT_EXIST"
    assert got["stage"] == "NOT_IMPLEMENTED"
    assert got["deleted_model"] == "RESOURCE_DOES_NOT_EXIST"
    assert got["models"] == ["empty-model", "renamed-model"]
    # triptych's side: the same state, and the audit trail followed the rename
    renamed, history, experiment = extra["triptych"]
    assert dict(renamed.aliases) == {"prod": 2} and renamed.versions == 1
    assert "rename" in [e.action for e in history] and history[0].action == "create"
    assert experiment is not None and dict(experiment.tags) == {"goal": "churn"}


def test_a_request_over_the_body_limit_is_refused(tmp_path: Path) -> None:
    import asyncio

    from triptych.server.app import create_app
    from triptych.server.settings import ServerSettings

    settings = ServerSettings(store="", max_body=1000)
    app = create_app(
        f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"), settings=settings
    )

    async def requests() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            big = await client.post("/api/2.0/mlflow/experiments/create", json={"name": "x" * 2000})
            small = await client.post("/api/2.0/mlflow/experiments/create", json={"name": "x"})
            return big, small

    big, small = asyncio.run(requests())
    assert big.status_code == 400 and "over 1,000 bytes" in big.json()["message"]
    assert small.status_code == 200 and small.json()["experiment_id"]


AUTH_SCRIPT = r"""
import json
import mlflow
out = {}
mlflow.set_experiment("secured")
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1.0)
out["run_id"] = run.info.run_id
print("RESULT " + json.dumps(out))
"""


def test_mlflow_uses_a_triptych_token_under_auth(tmp_path: Path) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    db = f"sqlite:///{folder / 'team.db'}"

    def account(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "triptych", "server", *args, "--store", db],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    admin = account("create-admin", "alice")
    account("user", "add", "bob", "--role", "viewer")
    viewer = account("token", "create", "bob")
    with _serve(folder, "--auth") as url:
        got = _client(url, AUTH_SCRIPT, tmp_path, MLFLOW_TRACKING_TOKEN=admin)
        run = f"{url}/api/2.0/mlflow/runs/get"
        bearer = {"Authorization": f"Bearer {viewer}"}
        assert httpx.get(run, params={"run_id": got["run_id"]}).status_code == 401
        seen = httpx.get(run, params={"run_id": got["run_id"]}, headers=bearer)
        assert seen.status_code == 200 and seen.json()["run"]["data"]["metrics"][0]["value"] == 1
        write = httpx.post(
            f"{url}/api/2.0/mlflow/runs/log-metric", headers=bearer,
            json={"run_id": got["run_id"], "key": "m", "value": 2, "timestamp": 1, "step": 1},
        )  # fmt: skip
        assert write.status_code == 403
