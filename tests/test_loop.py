"""The closed loop end to end against a real ``triptych serve`` on loopback: drift → retrain
→ gate → promote → the server follows → watch → keep; and an injected worse model → rollback.

The traffic is ``examples/diabetes/simulate_drift.py``'s (a new device reads bmi, bp and s5
higher; outcomes unchanged), so the demo is tested by the same run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import triptych
from serving_kit import ServerProcess
from triptych import deployments
from triptych.errors import Conflict, InvalidInput, NotFound, TriptychError
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
    monitors.create("diabetes", window="1h")  # the reference: the pipeline's training data
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
        # the confirmed champion's training data is the new baseline of the monitor
        assert confirm["reference"] == {"from": "datasets:/diabetes@1", "to": trained_on.uri}
        assert monitors.get("diabetes").reference == trained_on.uri
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
    # and the report tells the same story
    from triptych.monitoring import report

    shown = report.gather("diabetes")["loop"]
    assert [a["action"] for a in shown["actions"]][:3] == trail[:3]
    page = report.build("diabetes")
    assert "Closed loop" in page and "rolled back v3 to v2" in page


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


# -- the CLI ------------------------------------------------------------------------------------
def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from triptych.cli.main import app

    return CliRunner().invoke(app, list(args))


def _ok(*args: str) -> str:
    """What the command printed on stdout (alerts are logged to stderr)."""
    out = _cli(*args)
    assert out.exit_code == 0, (out.output, out.exception)
    return str(out.stdout)


def test_cli_policy_check_status_and_a_dry_run_loop(isolated: Path) -> None:
    sim = demo()
    deployed(isolated)
    shown = json.loads(_ok(
        "monitor", "policy", "diabetes", "--pipeline", str(PIPELINE), "--trigger", "drift",
        "-p", "train.alpha=2", "--min-labels", "20", "--retrain-cooldown", "30m", "--json",
    ))  # fmt: skip
    p = shown["policy"]
    assert (p["triggers"], p["params"], p["min_labels"]) == (["drift"], {"train.alpha": 2}, 20)
    assert p["retrain_cooldown_s"] == 1800 and p["pipeline"] == str(PIPELINE)
    assert "on drift" in _ok("monitor", "policy", "diabetes")  # shows it

    from triptych.serving import predlog

    rows, outcome = sim.world(120, seed=1, shift=1.5)
    sim.label("diabetes", _log(rows, predlog), outcome)
    dry = _ok("monitor", "check", "diabetes", "--dry-run")
    assert "bmi" in dry and "drifted" in dry and "dry run" in dry
    assert checks.history("diabetes") == []
    checked = json.loads(_ok("monitor", "check", "diabetes", "--json"))
    assert checked["drift"]["prediction_drifted"] and checked["decayed"]
    assert len(checks.history("diabetes")) == 1
    status = json.loads(_ok("monitor", "status", "diabetes", "--json"))
    assert status["latest"]["end_ms"] == checked["end_ms"]
    assert {a["kind"] for a in status["active_alerts"]} == {"drift", "performance"}
    assert status["loop"]["policy"]["triggers"] == ["drift"]
    text = _ok("monitor", "status")
    assert "diabetes" in text and "active alerts: " in text and "loop: on drift" in text
    proposal = _ok("monitor", "loop", "diabetes", "--dry-run")
    assert "would retrain: drift" in proposal
    assert [v.version for v in registry.versions("diabetes")] == [1]
    assert "no loop policy" in _ok("monitor", "policy", "diabetes", "--clear")


@pytest.mark.parametrize(
    "args, words",
    [
        (("monitor", "policy", "diabetes", "--pipeline", "nowhere.py"), "does not exist"),
        (("monitor", "policy", "diabetes", "-p", "x=1"), "needs its pipeline"),
        (
            ("monitor", "policy", "diabetes", "--pipeline", str(PIPELINE), "-p", "alpha"),
            "step.key=value",
        ),
        (("monitor", "loop", "diabetes", "--once"), "no loop policy"),
        (("monitor", "check", "ghost"), "monitor 'ghost' not found"),
    ],
)
def test_cli_mistakes_are_one_clear_error(
    isolated: Path, args: tuple[str, ...], words: str
) -> None:
    deployed(isolated)
    policy.clear_policy("diabetes")
    out = _cli(*args)
    assert isinstance(out.exception, TriptychError) and words in str(out.exception)
    assert monitors.get("diabetes").policy is None


def test_schedule_trigger_fires_once_per_occurrence(isolated: Path) -> None:
    from datetime import datetime, timezone

    deployed(isolated)
    yearly = "0 0 1 1 *"  # midnight, 1 January
    m = policy.set_policy("diabetes", pipeline=str(PIPELINE), triggers=["schedule"],
                          schedule=yearly, retrain_cooldown=0)  # fmt: skip
    set_at = datetime.fromtimestamp(m.updated_at / 1000, tz=timezone.utc)
    new_year = int(datetime(set_at.year + 1, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert loop.tick("diabetes", dry_run=True, now_ms=new_year - 60_000).action == "none"
    due = loop.tick("diabetes", dry_run=True, now_ms=new_year + 60_000)
    assert due.action == "retrain" and "schedule: 0 0 1 1 *" in due.reason
    done = loop.tick("diabetes", now_ms=new_year + 60_000)  # runs the pipeline for real
    assert done.action == "retrain" and done.details["status"] == "FINISHED"
    assert done.details["feedback_rows"] == 0  # no labelled live rows: the reference alone
    assert "the gate kept v1" in done.reason  # the same data trains the same model
    later = loop.tick("diabetes", dry_run=True, now_ms=new_year + 3_600_000)
    assert later.action == "none"  # that occurrence is done; the next is a year away
