"""``triptych import mlflow``: an MLflow store written by MLflow's own client (SQLite, file
artifact root) imports completely, and a second import adds nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None,
    reason="needs MLflow: pip install 'triptych[mlflow]'",
)

# Written by MLflow's client in its own process (MLflow's warnings stay out of pytest's).
MAKE_STORE = textwrap.dedent(
    """
    import json, sys
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import Ridge

    uri, root = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    churn = client.create_experiment(
        "churn", artifact_location=root + "/churn", tags={"team": "ds"}
    )
    client.set_experiment_tag(churn, "goal", "retention")  # a tag set after creation
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"alpha": 0.5, "solver": "lbfgs"})
        for step in range(30):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metric("auc", 0.91)
        mlflow.set_tag("stage", "dev")
        mlflow.log_text("hello", "notes/readme.txt")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("loss", 0.3)
        model = Ridge().fit(np.arange(8.0).reshape(4, 2), np.arange(4.0))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="ridge")
    with mlflow.start_run(run_name="broken") as broken:
        mlflow.log_param("alpha", 2)
    client.set_terminated(broken.info.run_id, "FAILED")
    with mlflow.start_run(run_name="gone") as gone:
        mlflow.log_metric("loss", 9.0)
    client.delete_run(gone.info.run_id)
    client.create_experiment("other", artifact_location=root + "/other")
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="x") as other:
        mlflow.log_metric("m", 1.0)
    client.create_model_version("ridge", f"runs:/{other.info.run_id}/model", other.info.run_id)
    client.set_registered_model_alias("ridge", "champion", "1")
    client.set_registered_model_alias("ridge", "challenger", "2")
    client.update_registered_model("ridge", description="ridge on churn")
    client.set_registered_model_tag("ridge", "owner", "ana")
    client.create_registered_model("planned", tags={"team": "ds"}, description="not yet trained")
    print(json.dumps({"parent": parent.info.run_id, "child": child.info.run_id,
                      "broken": broken.info.run_id, "gone": gone.info.run_id,
                      "other": other.info.run_id, "model_id": info.model_id}))
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIPTYCH_", "MLFLOW_"))}
    env["TRIPTYCH_TRACKING_URI"] = f"sqlite:///{tmp_path / 'triptych.db'}"
    env["TRIPTYCH_ARTIFACT_URI"] = str(tmp_path / "triptych-artifacts")
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = subprocess.run(
        [sys.executable, "-c", MAKE_STORE, uri, str(folder / "mlruns")],
        cwd=folder,
        env=_env(folder),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return uri, json.loads(done.stdout.strip().splitlines()[-1])


def _import(tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "import", "mlflow", *args, "--json"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_import_is_complete_and_idempotent(
    mlflow_store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from triptych.tracking.client import Client

    uri, ids = mlflow_store
    first = _import(tmp_path, "--from", uri)
    assert first["runs_imported"] == 5 and first["experiments_created"] == 3  # with Default
    assert first["model_versions_imported"] == 2 and first["aliases_set"] == 2
    assert first["warnings"] == []

    client = Client(
        str(_env(tmp_path)["TRIPTYCH_TRACKING_URI"]), _env(tmp_path)["TRIPTYCH_ARTIFACT_URI"]
    )
    churn = client.get_experiment_by_name("churn")
    assert churn is not None and (churn.tags["team"], churn.tags["goal"]) == ("ds", "retention")
    parent = client.get_run(ids["parent"])  # MLflow's run ids are kept
    assert parent.name == "parent" and parent.status.value == "FINISHED"
    assert parent.end_time is not None and parent.end_time >= parent.start_time
    assert dict(parent.params) == {"alpha": "0.5", "solver": "lbfgs"}
    assert parent.tags["stage"] == "dev" and parent.tags["triptych.imported_from"] == "mlflow"
    loss = client.get_metric_history(ids["parent"], "loss")
    assert [m.step for m in loss] == list(range(30))
    assert [m.value for m in loss] == pytest.approx([1 / (s + 1) for s in range(30)])
    assert all(m.timestamp > 1_600_000_000_000 for m in loss)
    assert client.read_artifact(ids["parent"], "notes/readme.txt") == b"hello"
    assert client.get_run(ids["child"]).parent_run_id == ids["parent"]
    assert client.get_run(ids["broken"]).status.value == "FAILED"
    assert client.get_run(ids["gone"]).lifecycle.value == "deleted"

    store = client.store
    versions = store.list_model_versions("ridge")
    assert [(v.version, v.tags["mlflow.version"], v.run_id) for v in versions] == [
        (1, "1", ids["parent"]),
        (2, "2", ids["other"]),
    ]
    # The logged model's files now live in its run's tree, and the version points there.
    assert versions[0].source == f"runs:/{ids['parent']}/models/{ids['model_id']}"
    files = {e.path for e in store.walk_artifacts(ids["parent"], f"models/{ids['model_id']}")}
    assert f"models/{ids['model_id']}/MLmodel" in files
    ridge = store.get_registered_model("ridge")
    assert dict(ridge.aliases) == {"champion": 1, "challenger": 2}
    assert (ridge.description, dict(ridge.tags)) == ("ridge on churn", {"owner": "ana"})
    planned = store.get_registered_model("planned")  # a model without versions
    assert (planned.description, dict(planned.tags), planned.versions) == (
        "not yet trained",
        {"team": "ds"},
        0,
    )
    assert first["registered_models_created"] == 2 and first["model_tags_added"] == 2
    history = [e.action for e in store.model_history("ridge")]
    assert history[:3] == ["create", "register", "register"]

    second = _import(tmp_path, "--from", uri)
    assert second["runs_imported"] == 0 and second["runs_skipped"] == 5
    assert second["model_versions_imported"] == 0 and second["aliases_set"] == 0
    assert second["metrics"] == 0 and second["artifacts"] == 0
    assert second["registered_models_created"] == 0 and second["model_tags_added"] == 0
    assert second["experiment_tags_added"] == 0 and second["experiments_created"] == 0
    assert store.model_history("ridge")[-1].action == "alias"  # nothing written the 2nd time
    assert len(store.model_history("planned")) == 1

    # What triptych lost since is added back; what it changed is kept.
    store.delete_experiment_tag(churn.experiment_id, "goal")
    store.update_registered_model("planned", tags={"team": "ml"})
    store.delete_registered_model_tag("ridge", "owner")
    third = _import(tmp_path, "--from", uri)
    assert third["experiment_tags_added"] == 1 and third["model_tags_added"] == 1
    assert store.get_experiment(churn.experiment_id).tags["goal"] == "retention"
    assert dict(store.get_registered_model("ridge").tags) == {"owner": "ana"}
    assert dict(store.get_registered_model("planned").tags) == {"team": "ml"}
    assert len(store.list_model_versions("ridge")) == 2
    assert len(client.get_metric_history(ids["parent"], "loss")) == 30


def test_import_only_named_experiments(
    mlflow_store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from triptych.tracking.client import Client

    uri, ids = mlflow_store
    report = _import(tmp_path, "--from", uri, "--experiments", "other")
    assert report["runs_imported"] == 1 and report["model_versions_imported"] == 1
    client = Client(
        _env(tmp_path)["TRIPTYCH_TRACKING_URI"], _env(tmp_path)["TRIPTYCH_ARTIFACT_URI"]
    )
    assert client.get_experiment_by_name("churn") is None
    assert [v.run_id for v in client.store.list_model_versions("ridge")] == [ids["other"]]
    # The alias of a version that was not imported is not set.
    assert dict(client.store.get_registered_model("ridge").aliases) == {"challenger": 1}
    assert dict(client.store.get_registered_model("ridge").tags) == {"owner": "ana"}
    names = [m.name for m in client.store.list_registered_models()]
    assert names == ["ridge"]  # a model without versions belongs to no experiment


def test_a_missing_mlflow_experiment_is_an_error(
    mlflow_store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "import", "mlflow", "--from", mlflow_store[0],
         "--experiments", "nope"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode != 0 and "no MLflow experiment named nope" in done.stderr


def test_without_mlflow_the_error_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys\nsys.modules['mlflow'] = None  # as if it were not installed\n"
        "from triptych.cli.main import run\n"
        "sys.argv = ['triptych', 'import', 'mlflow', '--from', 'sqlite:///mlflow.db']\nrun()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "pip install 'triptych[mlflow]'" in done.stderr and "Traceback" not in done.stderr
