"""The closed loop end to end against a real ``triptych serve`` on loopback: drift → retrain
→ gate → promote → the server follows → watch → keep; and an injected worse model → rollback.

The traffic is ``examples/diabetes/simulate_drift.py``'s (a new device reads bmi, bp and s5
higher; outcomes unchanged), so the demo is tested by the same run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import triptych
from serving_kit import ServerProcess
from triptych import deployments
from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.models import registry
from triptych.monitoring import alerts, checks, loop, monitors, policy
from triptych.pipelines import runner
from triptych.tracking.client import Client

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "diabetes"
PIPELINE = EXAMPLES / "pipeline.py"
PARAMS = {"train.alpha": 0.5}


def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate_drift", EXAMPLES / "simulate_drift.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_drift"] = module
    spec.loader.exec_module(module)
    return module


def deployed(home: Path) -> None:
    """diabetes v1 from the reference pipeline, deployed, monitored, with a loop policy."""
    result = runner.run(PIPELINE)
    assert result.status == "FINISHED"
    assert Client().store.get_model_version("diabetes", alias="champion").version == 1
    deployments.create("diabetes", "models:/diabetes@champion")
    monitors.create("diabetes", reference="datasets:/diabetes@1", window="1h")
    policy.set_policy(
        "diabetes", pipeline=str(PIPELINE), params=PARAMS, min_labels=50, retrain_cooldown=0
    )


@pytest.mark.slow
def test_drift_retrain_promote_watch_then_an_injected_worse_model_is_rolled_back(
    isolated: Path,
) -> None:
    sim = demo()
    deployed(isolated)
    server = ServerProcess(isolated / ".triptych", "deployments:/diabetes")
    try:
        decisions = sim.main(["--url", server.url, "--rows", "150", "--json"])
        actions = [d["action"] for d in decisions]
        assert actions == ["none", "retrain", "confirm"], decisions
        retrain = decisions[1]
        assert any(r.startswith("drift:") for r in retrain["details"]["reasons"])
        assert any(r.startswith("performance:") for r in retrain["details"]["reasons"])
        assert retrain["details"]["champion_before"] == 1
        assert retrain["details"]["champion_after"] == 2
        assert retrain["details"]["feedback_rows"] == 300  # both phases' labelled rows
        trained_on = triptych.data.get(retrain["details"]["dataset"])
        assert (trained_on.name, trained_on.version) == ("diabetes-live", 1)
        assert trained_on.rows == 442 + 300
        confirm = decisions[2]["details"]
        assert confirm["version"] == 2 and confirm["previous"] == 1
        assert confirm["new_score"] < confirm["previous_score"]  # on the same live rows
        kinds = {(a.kind, a.key) for a in alerts.list("diabetes")}
        assert {("drift", "prediction"), ("performance", "decay")} <= kinds

        # an engineer promotes a bad model by hand; the loop judges it on live traffic
        x, y = load_diabetes(return_X_y=True, as_frame=True)
        with triptych.start_run(experiment="diabetes") as run:
            triptych.log_model(Ridge(alpha=500.0).fit(x, y), "model", input_example=x.head(2))
        registry.register(f"runs:/{run.run_id}/model", "diabetes")
        registry.set_alias("diabetes", "champion", 3, reason="hotfix")
        sim.wait_version(server.url, 3)
        early = loop.tick("diabetes")
        assert early.action == "watch" and early.details["labelled"] == 0
        sim.phase(server.url, "diabetes", *sim.world(80, seed=7, shift=1.5))
        dry = loop.tick("diabetes", dry_run=True)
        assert dry.action == "rollback" and dry.dry_run
        assert Client().store.get_model_version("diabetes", alias="champion").version == 3
        back = loop.tick("diabetes")
        assert back.action == "rollback", back.reason
        assert back.details["new_score"] > back.details["previous_score"]
        assert Client().store.get_model_version("diabetes", alias="champion").version == 2
        sim.wait_version(server.url, 2)  # the deployment followed the rollback
        after = loop.tick("diabetes")
        assert after.action in ("none", "cooldown", "retrain")  # judged: no second rollback
        assert "watch" not in after.action
    finally:
        out = server.stop()
    assert "Traceback" not in out, out

    trail = [e.action for e in registry.history("diabetes") if e.action.startswith("loop.")]
    assert trail[:3] == ["loop.retrain", "loop.confirm", "loop.rollback"]
    rollback = next(e for e in registry.history("diabetes") if e.action == "loop.rollback")
    assert rollback.details is not None and rollback.details["deployment"] == "diabetes"
    assert len(checks.history("diabetes")) >= 2


def test_dry_run_only_proposes(isolated: Path) -> None:
    sim = demo()
    deployed(isolated)
    from triptych.serving import predlog

    # the same traffic as the demo's drift phase, written as a server's prediction log
    rows, outcome = sim.world(120, seed=1, shift=1.5)
    answers = _log(rows, predlog)
    sim.label("diabetes", answers, outcome)
    proposal = loop.tick("diabetes", dry_run=True)
    assert proposal.action == "retrain" and proposal.reason.startswith("would retrain: drift")
    store = Client().store
    assert store.get_model_version("diabetes", alias="champion").version == 1
    assert [v.version for v in registry.versions("diabetes")] == [1]
    assert alerts.list("diabetes") == [] and checks.history("diabetes") == []
    assert [e for e in registry.history("diabetes") if e.action.startswith("loop.")] == []


def _log(rows: object, predlog: ModuleType) -> list[dict[str, object]]:
    """Score ``rows`` with the champion and log them as ``triptych serve`` would."""
    import time

    from triptych.models.model import load_model
    from triptych.serving import ids
    from triptych.store.entities import RunSpec

    client = Client()
    model = load_model("models:/diabetes@champion")
    experiment = client.store.get_or_create_experiment(predlog.SERVING_EXPERIMENT)
    now = int(time.time() * 1000)
    run = client.store.create_run(
        RunSpec(
            experiment.experiment_id,
            name="serve",
            start_time=now - 5000,
            tags={predlog.TARGET_TAG: "deployments:/diabetes"},
            heartbeat_timeout=10**6,
        )
    )
    log = predlog.PredictionLog(client, run.run_id, flush_seconds=3600)
    answers = []
    for i, (record, value) in enumerate(
        zip(rows.to_dict("records"), model.predict(rows), strict=True)  # type: ignore[attr-defined]
    ):
        when = now - 4000 + i
        rid = ids.new_request_id(when)
        log.record(
            predlog.Prediction(
                rid,
                when,
                "diabetes",
                "primary",
                "diabetes",
                1,
                "runs:/x/model",
                [record],
                [float(value)],
                0.3,
                200,
            )
        )
        answers.append({"request_id": rid})
    log.close()
    return answers


def test_policy_errors_change_nothing(isolated: Path) -> None:
    deployed(isolated)
    before = monitors.get("diabetes").policy
    with pytest.raises(InvalidInput, match="does not exist"):
        policy.set_policy("diabetes", pipeline="nowhere.py")
    with pytest.raises(InvalidInput, match="triggers"):
        policy.set_policy("diabetes", pipeline=str(PIPELINE), triggers=["weather"])
    with pytest.raises(InvalidInput, match="cron"):
        policy.set_policy(
            "diabetes", pipeline=str(PIPELINE), triggers=["schedule"], schedule="every tuesday"
        )
    with pytest.raises(NotFound):
        policy.set_policy("ghost", pipeline=str(PIPELINE))
    assert monitors.get("diabetes").policy == before
    deployments.create("pinned", "models:/diabetes/1")
    monitors.create("pinned", reference="datasets:/diabetes@1")
    with pytest.raises(InvalidInput, match="not a model alias"):
        policy.set_policy("pinned", pipeline=str(PIPELINE))
    with pytest.raises(Conflict, match="no loop policy"):
        loop.tick("pinned")
    assert policy.clear_policy("diabetes").policy is None
