"""The model registry service and ``triptych models``: versions, aliases, the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

import triptych
from triptych.errors import InvalidInput, NotFound
from triptych.models import registry
from triptych.store.base import now_ms


def _run_with_files(experiment: str = "models") -> str:
    with triptych.start_run(experiment=experiment) as run:
        triptych.log_text("{}", "model/manifest.json")
    return run.run_id


def test_register_resolve_and_aliases() -> None:
    a, b = _run_with_files(), _run_with_files()
    v1 = registry.register(f"runs:/{a}/model", "ridge", description="alpha 0.5")
    v2 = registry.register(f"runs:/{b}/model", "ridge", reason="retrained")
    assert (v1.version, v2.version, v1.run_id) == (1, 2, a)
    assert registry.set_alias("ridge", "champion", 1, reason="first") is None
    assert registry.resolve("models:/ridge@champion") == f"runs:/{a}/model"
    assert registry.resolve("models:/ridge/2") == f"runs:/{b}/model"
    assert registry.resolve("models:/ridge@latest") == f"runs:/{b}/model"
    assert registry.set_alias("ridge", "champion", 2, reason="better mse") == 1
    events = registry.history("ridge")
    assert [e.action for e in events] == ["register", "register", "alias", "alias"]
    assert events[-1].reason == "better mse" and events[-1].previous_version == 1


def test_history_answers_for_times_between_moves() -> None:
    ids = [_run_with_files() for _ in range(3)]
    for run_id in ids:
        registry.register(f"runs:/{run_id}/model", "m")
    marks = [now_ms()]
    for version in (1, 2, 3):
        time.sleep(0.02)
        registry.set_alias("m", "champion", version)
        time.sleep(0.02)
        marks.append(now_ms())
    registry.set_alias("m", "challenger", 3)
    registry.delete_alias("m", "champion", reason="incident")
    after = now_ms()
    assert registry.aliases_at("m", marks[0]) == {}
    assert registry.aliases_at("m", marks[1]) == {"champion": 1}
    assert registry.aliases_at("m", marks[2]) == {"champion": 2}
    assert registry.aliases_at("m", marks[3]) == {"champion": 3}
    assert registry.aliases_at("m", after) == {"challenger": 3}


def test_register_refuses_what_does_not_exist() -> None:
    with pytest.raises(NotFound):
        registry.register("runs:/" + "0" * 32 + "/model", "m")
    with triptych.start_run() as run:
        pass
    with pytest.raises(NotFound, match="no model files"):
        registry.register(f"runs:/{run.run_id}/model", "m")
    with pytest.raises(NotFound):
        registry.versions("m")  # nothing was created
    assert registry.list_models() == []


@pytest.mark.parametrize("bad", ["models:/", "models:/a/b/c", "models:/x@1bad", "models:/a b"])
def test_bad_addresses(bad: str) -> None:
    with pytest.raises(InvalidInput):
        registry.parse_ref(bad)


def test_deleting_a_version_drops_its_aliases_and_is_recorded() -> None:
    run_id = _run_with_files()
    registry.register(f"runs:/{run_id}/model", "m")
    registry.set_alias("m", "champion", 1)
    registry.delete_version("m", 1, reason="leaked test data")
    with pytest.raises(NotFound):
        registry.get("models:/m@champion")
    actions = [(e.action, e.reason) for e in registry.history("m")]
    assert actions[-2:] == [("unalias", "version 1 deleted"), ("delete", "leaked test data")]
    assert triptych.Client().get_run(run_id).run_id == run_id  # the run and its files stay


def _cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "triptych", *args], capture_output=True, text=True, env=env
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_models_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    triptych.set_tracking_uri(f"sqlite:///{home / 'triptych.db'}", str(home / "artifacts"))
    a, b = _run_with_files(), _run_with_files()
    out = _cli(home, "models", "register", f"runs:/{a}/model", "ridge", "--alias", "champion")
    assert "models:/ridge/1 (@champion)" in out.stdout
    _cli(home, "models", "register", f"runs:/{b}/model", "ridge")
    between = now_ms()
    time.sleep(0.05)
    moved = _cli(home, "models", "alias", "ridge", "champion", "2", "--reason", "lower mse")
    assert "was 1" in moved.stdout
    listed = json.loads(_cli(home, "models", "list", "--json").stdout)
    assert listed[0]["aliases"] == {"champion": 2} and listed[0]["latest_version"] == 2
    assert (listed[0]["description"], listed[0]["tags"]) == (None, {})
    at = datetime.fromtimestamp(between / 1000).isoformat()  # local time, as a user types it
    then = json.loads(_cli(home, "models", "history", "ridge", "--at", at, "--json").stdout)
    assert then["aliases"] == {"champion": 1}
    trail = json.loads(_cli(home, "models", "history", "ridge", "--json").stdout)
    assert trail[-1]["reason"] == "lower mse"
    shown = json.loads(_cli(home, "models", "show", "ridge@champion", "--json").stdout)
    assert shown[0]["version"] == 2 and shown[0]["run_id"] == b
    bad = _cli(home, "models", "alias", "ridge", "champion", "9", ok=False)
    assert bad.returncode == 1 and "no version 9" in bad.stderr
    _cli(home, "models", "delete", "ridge/1", "--reason", "old")
    assert [
        v["version"] for v in json.loads(_cli(home, "models", "show", "ridge", "--json").stdout)
    ] == [2]


def test_data_lineage_reaches_the_models() -> None:
    import pandas as pd

    triptych.data.add("people", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with triptych.start_run() as run:
        triptych.log_input("datasets:/people@1")
        triptych.log_text("{}", "model/manifest.json")
    registry.register(f"runs:/{run.run_id}/model", "people-model")
    found = triptych.data.registry.models_trained_on("people@1")
    assert [m.uri for m in found] == ["models:/people-model/1"]


def test_protected_alias_needs_someone_else(monkeypatch: pytest.MonkeyPatch) -> None:
    from triptych.errors import PermissionDenied

    run_id = _run_with_files()
    registry.register(f"runs:/{run_id}/model", "m")
    registry.set_policy("m", "production", require_approval=True)
    with pytest.raises(PermissionDenied, match="requires an approval"):
        registry.set_alias("m", "production", 1)
    monkeypatch.setenv("TRIPTYCH_USER", "ana")
    req = registry.request_alias("m", "production", 1, reason="release 1")
    with pytest.raises(PermissionDenied):
        registry.approve(req.request_id)
    monkeypatch.setenv("TRIPTYCH_USER", "bo")
    assert registry.approve(req.request_id, reason="checked").status == "approved"
    assert registry.get("models:/m@production").version == 1
    moved = [e for e in registry.history("m") if e.action == "alias"][-1]
    assert (moved.user, moved.details["requested_by"]) == ("bo", "ana")  # type: ignore[index]
