"""Deployments: the service over real registered models, the rollback rule, ``triptych deploy``.

The store half (revisions, trail, concurrent writers) is in the contract suite
(``triptych.testing.deployment_contract``), run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import triptych
from triptych import deployments
from triptych.deployments import Thresholds, VariantStats, decide
from triptych.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from triptych.models import registry

CHAMPION = "models:/diabetes@champion"
CHALLENGER = "models:/diabetes@challenger"


@pytest.fixture
def models() -> list[str]:
    """Three Ridge models on sklearn's diabetes, registered as diabetes v1-v3;
    champion → 1, challenger → 2. Returns the runs' ids."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    run_ids = []
    for alpha in (0.1, 1.0, 10.0):
        with triptych.start_run(experiment="diabetes") as run:
            triptych.log_model(Ridge(alpha=alpha).fit(x, y), "model", input_example=x.head(2))
        registry.register(f"runs:/{run.run_id}/model", "diabetes")
        run_ids.append(run.run_id)
    registry.set_alias("diabetes", "champion", 1)
    registry.set_alias("diabetes", "challenger", 2)
    return run_ids


def _champion() -> int:
    return registry.get(CHAMPION).version


# -- the service ----------------------------------------------------------------------------
def test_create_checks_and_resolves_every_address(models: list[str]) -> None:
    shadow = f"runs:/{models[2]}/model"
    d = deployments.create(
        "diabetes", CHAMPION, canary=CHALLENGER, weight=10, shadow=shadow, reason="launch"
    )
    assert (d.primary, d.canary, d.canary_weight, d.shadow, d.revision) == (
        CHAMPION, CHALLENGER, 10, shadow, 1,
    )  # fmt: skip
    assert d.thresholds == Thresholds(max_error_rate=0.05, max_p99_ms=None, min_requests=50)
    assert deployments.get("deployments:/diabetes") == d == deployments.list()[0]
    primary = deployments.target(d.primary)
    assert (primary.model_name, primary.model_version) == ("diabetes", 1)
    assert primary.source == f"runs:/{models[0]}/model"
    assert deployments.target(shadow).model_version is None
    (event,) = deployments.history("diabetes")
    assert (event.action, event.reason, event.after) == ("create", "launch", d.spec)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"model": "models:/diabetes@nope"}, NotFound, "primary"),
        ({"model": "models:/other@champion"}, NotFound, "other"),
        ({"model": "runs:/" + "0" * 32 + "/model"}, NotFound, "primary"),
        ({"model": "http://example.com/model"}, InvalidInput, "not a model address"),
        ({"canary": "models:/diabetes/9", "weight": 5}, NotFound, "canary"),
        ({"shadow": "models:/diabetes@ghost"}, NotFound, "shadow"),
        ({"canary": CHALLENGER, "weight": 101}, InvalidInput, "percentage"),
        ({"canary": CHALLENGER, "weight": -5}, InvalidInput, "percentage"),
        ({"weight": 10}, InvalidInput, "needs a canary"),
        ({"shadow": CHAMPION}, InvalidInput, "primary itself"),
        ({"thresholds": {"max_error_rate": 2}}, InvalidInput, "fraction"),
        ({"thresholds": {"max_errors": 0.1}}, InvalidInput, "unknown threshold"),
        ({"name": "no spaces"}, InvalidInput, "deployment name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    models: list[str], kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    args = {"name": "diabetes", "model": CHAMPION, **kwargs}
    with pytest.raises(error, match=words):
        deployments.create(args.pop("name"), args.pop("model"), **args)
    assert deployments.list() == []
    with pytest.raises(NotFound):
        deployments.history("diabetes")


def test_a_runs_uri_without_model_files_is_refused(models: list[str]) -> None:
    with triptych.start_run() as empty:
        pass
    with pytest.raises(NotFound, match="no model files"):
        deployments.create("d", f"runs:/{empty.run_id}/model")
    assert deployments.list() == []


def test_duplicate_name_is_refused(models: list[str]) -> None:
    deployments.create("diabetes", CHAMPION)
    with pytest.raises(AlreadyExists, match="diabetes"):
        deployments.create("diabetes", "models:/diabetes/3")
    assert deployments.get("diabetes").primary == CHAMPION


def test_promote_moves_the_alias_and_rollback_moves_it_back(models: list[str]) -> None:
    deployments.create("diabetes", CHAMPION, canary=CHALLENGER, weight=10)
    promoted = deployments.promote("diabetes", reason="canary healthy for a day")
    assert (promoted.primary, promoted.canary, promoted.canary_weight) == (CHAMPION, None, 0)
    assert promoted.revision == 2 and _champion() == 2  # the server follows the alias
    moved = registry.history("diabetes")[-1]
    assert (moved.action, moved.alias, moved.previous_version, moved.version) == (
        "alias", "champion", 1, 2,
    )  # fmt: skip
    assert moved.reason == "promote deployment diabetes: canary healthy for a day"

    back = deployments.rollback("diabetes", reason="error rate 7%", actor="auto")
    assert (back.primary, back.canary, back.canary_weight, back.revision) == (
        CHAMPION, CHALLENGER, 10, 3,
    )  # fmt: skip
    assert _champion() == 1
    assert registry.history("diabetes")[-1].reason == "roll back deployment diabetes: error rate 7%"
    trail = deployments.history("diabetes")
    assert [e.action for e in trail] == ["create", "promote", "rollback"]
    assert (trail[-1].actor, trail[-1].reason) == ("auto", "error rate 7%")
    assert trail[1].details == {
        "alias": {"model": "diabetes", "alias": "champion", "from": 1, "to": 2}
    }
    assert trail[-1].details is not None and trail[-1].details["undoes"] == 2

    with pytest.raises(Conflict, match="nothing to roll back to"):
        deployments.rollback("diabetes")
    assert deployments.get("diabetes").revision == 3 and _champion() == 1


def test_promote_replaces_the_primary_when_it_is_not_an_alias(models: list[str]) -> None:
    canary = f"runs:/{models[2]}/model"
    deployments.create("d", "models:/diabetes/1", canary=canary, weight=30)
    promoted = deployments.promote("d")
    assert (promoted.primary, promoted.canary, promoted.canary_weight) == (canary, None, 0)
    assert _champion() == 1  # no alias was touched
    back = deployments.rollback("d")
    assert (back.primary, back.canary, back.canary_weight) == ("models:/diabetes/1", canary, 30)


def test_a_shadow_that_becomes_the_primary_is_dropped(models: list[str]) -> None:
    deployments.create("d", "models:/diabetes/1", canary="models:/diabetes/3", weight=5,
                       shadow="models:/diabetes/3")  # fmt: skip
    promoted = deployments.promote("d")
    assert (promoted.primary, promoted.shadow) == ("models:/diabetes/3", None)


def test_rollback_walks_back_one_change_at_a_time(models: list[str]) -> None:
    deployments.create("d", CHAMPION)
    deployments.set_canary("d", CHALLENGER, 10)
    deployments.set_canary("d", CHALLENGER, 50, reason="ramp up")
    assert deployments.rollback("d").canary_weight == 10
    assert deployments.rollback("d").canary is None
    with pytest.raises(Conflict, match="nothing to roll back to"):
        deployments.rollback("d")
    assert [e.action for e in deployments.history("d")] == [
        "create", "canary", "canary", "rollback", "rollback",
    ]  # fmt: skip
    cleared = deployments.set_canary("d", CHALLENGER, 20)
    assert deployments.set_canary("d", None).canary is None
    assert deployments.rollback("d") == deployments.get("d")
    assert deployments.get("d").canary_weight == cleared.canary_weight == 20


def test_bad_changes_write_nothing(models: list[str]) -> None:
    deployments.create("d", CHAMPION, canary=CHALLENGER, weight=10)
    with pytest.raises(InvalidInput, match="percentage"):
        deployments.set_canary("d", CHALLENGER, 150)
    with pytest.raises(InvalidInput, match="needs a canary"):
        deployments.set_canary("d", None, 10)
    with pytest.raises(NotFound, match="canary"):
        deployments.set_canary("d", "models:/diabetes@nope", 10)
    with pytest.raises(NotFound, match="ghost"):
        deployments.set_canary("ghost", CHALLENGER, 10)
    with pytest.raises(NotFound, match="ghost"):
        deployments.promote("ghost")
    assert deployments.get("d").revision == 1 and len(deployments.history("d")) == 1


def test_promote_without_a_canary_is_a_clear_error(models: list[str]) -> None:
    deployments.create("d", CHAMPION)
    with pytest.raises(Conflict, match="no canary to promote"):
        deployments.promote("d")
    assert deployments.get("d").revision == 1 and _champion() == 1


def test_promote_that_needs_an_approval_changes_nothing(models: list[str]) -> None:
    deployments.create("d", CHAMPION, canary=CHALLENGER, weight=10)
    registry.set_policy("diabetes", "champion", require_approval=True)
    with pytest.raises(PermissionDenied, match="approval"):
        deployments.promote("d")
    assert deployments.get("d").canary == CHALLENGER and _champion() == 1
    assert len(deployments.history("d")) == 1


def test_rollback_refuses_to_undo_someone_elses_alias_move(models: list[str]) -> None:
    deployments.create("d", CHAMPION, canary=CHALLENGER, weight=10)
    deployments.promote("d")
    registry.set_alias("diabetes", "champion", 3, reason="hotfix")
    with pytest.raises(Conflict, match="moved to version 3"):
        deployments.rollback("d")
    assert _champion() == 3 and deployments.get("d").revision == 2


def test_replicas_rolling_back_the_same_revision_roll_back_once(models: list[str]) -> None:
    """Every server replica sees the failing canary; only one rollback may happen."""
    deployments.create("d", CHAMPION)
    served = deployments.set_canary("d", CHALLENGER, 10)
    outcomes: list[str] = []

    def replica() -> None:
        try:
            deployments.rollback(
                "d", reason="p99 12 ms", actor="auto", expected_revision=served.revision
            )
            outcomes.append("rolled back")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["rolled back"]
    d = deployments.get("d")
    assert d.canary is None and d.revision == 3


def test_delete_keeps_the_audit_trail(models: list[str]) -> None:
    deployments.create("d", CHAMPION)
    deployments.delete("d", reason="retired")
    with pytest.raises(NotFound):
        deployments.get("d")
    assert [e.action for e in deployments.history("d")] == ["create", "delete"]
    with pytest.raises(NotFound):
        deployments.delete("d")


def test_thresholds_can_be_changed(models: list[str]) -> None:
    deployments.create("d", CHAMPION, thresholds={"max_p99_ms": 20})
    assert deployments.get("d").thresholds.max_p99_ms == 20
    changed = deployments.set_thresholds("d", Thresholds(max_error_rate=0.01, min_requests=10))
    assert changed.thresholds == Thresholds(0.01, None, 10) and changed.revision == 2


# -- the automatic-rollback rule -----------------------------------------------------------------
def test_no_decision_before_the_canary_has_enough_requests() -> None:
    t = Thresholds(max_error_rate=0.05, max_p99_ms=10, min_requests=50)
    assert decide(VariantStats(1000, 0, 2.0), VariantStats(49, 49, 500.0), t) is None


def test_a_canary_failing_more_than_the_threshold_and_the_primary_is_rolled_back() -> None:
    t = Thresholds(max_error_rate=0.05, min_requests=50)
    reason = decide(VariantStats(1000, 10, 2.0), VariantStats(100, 8, 2.0), t)
    assert reason is not None and "error rate 8.0%" in reason and "primary's 1.0%" in reason
    assert decide(VariantStats(1000, 10, 2.0), VariantStats(100, 5, 2.0), t) is None  # at 5%


def test_a_canary_no_worse_than_a_failing_primary_is_kept() -> None:
    t = Thresholds(max_error_rate=0.05, min_requests=50)
    assert decide(VariantStats(1000, 300, 2.0), VariantStats(100, 20, 2.0), t) is None


def test_a_slow_canary_is_rolled_back_only_when_latency_is_checked() -> None:
    slow = VariantStats(100, 0, 42.5)
    reason = decide(VariantStats(1000, 0, 2.0), slow, Thresholds(max_p99_ms=20, min_requests=50))
    assert reason is not None and "p99 latency 42.5 ms" in reason
    assert decide(VariantStats(1000, 0, 2.0), slow, Thresholds(max_p99_ms=None)) is None
    off = Thresholds(max_error_rate=None, min_requests=1)
    assert decide(VariantStats(10, 0, 1.0), VariantStats(10, 10, 1.0), off) is None


# -- triptych deploy ----------------------------------------------------------------------------
def _cli(*args: str, input: str | None = None) -> Any:
    from typer.testing import CliRunner

    from triptych.cli.main import app

    return CliRunner().invoke(app, list(args), input=input)


def _ok(*args: str, input: str | None = None) -> str:
    out = _cli(*args, input=input)
    assert out.exit_code == 0, (out.output, out.exception)
    return str(out.output)


def test_the_deploy_commands(models: list[str]) -> None:
    made = json.loads(
        _ok("deploy", "create", "diabetes", "--model", CHAMPION, "--canary", CHALLENGER,
            "--weight", "10", "--max-p99-ms", "25", "--json")
    )  # fmt: skip
    assert (made["canary_weight"], made["revision"], made["thresholds"]["max_p99_ms"]) == (
        10, 1, 25.0,
    )  # fmt: skip
    assert [d["name"] for d in json.loads(_ok("deploy", "list", "--json"))] == ["diabetes"]
    assert "diabetes" in _ok("deploy", "list")
    shown = _ok("deploy", "show", "diabetes")
    assert "diabetes v1" in shown and "diabetes v2" in shown and "90%" in shown
    data = json.loads(_ok("deploy", "show", "deployments:/diabetes", "--json"))
    assert (
        data["serves"]["canary"]["model_version"] == 2 and data["recent"][0]["action"] == "create"
    )

    assert "takes 20%" in _ok("deploy", "canary", "diabetes", CHALLENGER, "--weight", "20")
    assert "champion moved v1 → v2" in _ok("deploy", "promote", "diabetes")
    assert _champion() == 2
    assert "undid revision 3" in _ok("deploy", "rollback", "diabetes", "--reason", "slow")
    assert _champion() == 1
    assert "canary removed" in _ok("deploy", "canary", "diabetes", "--clear")
    trail = json.loads(_ok("deploy", "history", "diabetes", "--json"))
    assert [e["action"] for e in trail] == ["create", "canary", "promote", "rollback", "canary"]
    assert trail[3]["reason"] == "slow"
    assert "rollback" in _ok("deploy", "history", "diabetes")

    refused = _cli("deploy", "delete", "diabetes", input="n\n")
    assert refused.exit_code == 1 and deployments.get("diabetes")  # still there
    assert "history stays" in _ok("deploy", "delete", "diabetes", "--yes")
    assert json.loads(_ok("deploy", "list", "--json")) == []
    assert "delete" in _ok("deploy", "history", "diabetes")


def test_deploy_command_mistakes(models: list[str]) -> None:
    _ok("deploy", "create", "d", "--model", CHAMPION)
    out = _cli("deploy", "create", "d", "--model", CHAMPION)
    assert isinstance(out.exception, AlreadyExists)
    out = _cli("deploy", "canary", "d", CHALLENGER)
    assert isinstance(out.exception, InvalidInput) and "--weight" in str(out.exception)
    out = _cli("deploy", "canary", "d", CHALLENGER, "--clear")
    assert isinstance(out.exception, InvalidInput)
    out = _cli("deploy", "create", "e", "--model", CHAMPION, "--weight", "10")
    assert isinstance(out.exception, InvalidInput)
    assert [d.name for d in deployments.list()] == ["d"]
    assert deployments.get("d").revision == 1


def test_errors_print_one_line_with_the_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "deploy", "show", "nope"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: deployment 'nope' not found (fix: list them with: triptych deploy list)"
    ]
