"""``triptych doctor`` on an empty folder (level 0, nothing written) and on a project that
has climbed every level: git, tests, CI with a release job, a tracked training pipeline, gated
models, a deployment, a monitor with a loop policy that has acted (level 4)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from triptych.errors import InvalidInput
from triptych.scaffold import doctor

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "diabetes"
WORKFLOW = """\
name: ci
on: [pull_request, push]
jobs:
  gates:
    runs-on: ubuntu-latest
    steps:
      - run: triptych ci
  release:
    runs-on: ubuntu-latest
    steps:
      - run: triptych deploy canary diabetes models:/diabetes@challenger --weight 10
      - run: triptych smoke-test http://staging:8080
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triptych", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_empty_folder_is_level_0_and_nothing_is_written(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    d = doctor.diagnose(empty)
    assert (d.level, d.level_name, d.store) == (0, "no MLOps", None)
    assert d.ml_test_score == 0 and set(d.sections.values()) == {0.0}
    assert all(t.evidence == "not found" and t.fix for t in d.tests)
    assert d.next_steps[0].startswith("code under version control")
    done = _cli("doctor", str(empty), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["level"] == 0
    assert list(empty.iterdir()) == []  # no store was created to look into


def test_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a folder"):
        doctor.diagnose(tmp_path / "nowhere")
    done = _cli("doctor", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 1 and "is not a folder" in done.stderr
    assert "Traceback" not in done.stderr


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin",
        },
    )


def _levels(d: doctor.Diagnosis) -> dict[int, list[dict[str, Any]]]:
    return {lv["level"]: lv["requirements"] for lv in d.levels}


@pytest.mark.slow
def test_a_project_that_climbed_every_level_is_level_4(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import triptych
    from test_loop import _log
    from triptych import deployments
    from triptych.monitoring import loop, monitors, policy
    from triptych.pipelines import runner
    from triptych.serving import predlog

    project = isolated / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(EXAMPLES / "pipeline.py", project / "pipelines" / "training.py")
    shutil.copy(EXAMPLES / "params.yaml", project / "pipelines" / "params.yaml")
    (project / "tests" / "test_training.py").write_text("def test_nothing_yet():\n    pass\n")
    (project / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    _git("init", "-q", cwd=project)
    _git("add", ".", cwd=project)
    _git("commit", "-qm", "the project", cwd=project)
    monkeypatch.chdir(project)
    triptych.testing.reset_process_state()

    level_1 = doctor.diagnose(project)
    assert level_1.level == 1 and level_1.store is None
    assert _levels(level_1)[2][0]["evidence"] == "pipelines/training.py"

    assert runner.run(project / "pipelines" / "training.py").status == "FINISHED"
    level_3 = doctor.diagnose(project)
    assert level_3.level == 2  # a registry, but nothing deployed yet
    deployments.create("diabetes", "models:/diabetes@champion")
    assert doctor.diagnose(project).level == 3
    monitors.create("diabetes", window="1h")
    policy.set_policy(
        "diabetes", pipeline=str(project / "pipelines" / "training.py"), retrain_cooldown=0
    )
    assert doctor.diagnose(project).level == 3  # the loop has not acted yet
    sim = _demo()
    rows, outcome = sim.world(120, seed=1, shift=1.5)
    sim.label("diabetes", _log(rows, predlog), outcome)
    assert loop.tick("diabetes").action == "retrain"

    d = doctor.diagnose(project)
    assert (d.level, d.level_name) == (4, "automated operations")
    assert all(p["score"] == 1 for reqs in _levels(d).values() for p in reqs)
    by_key = {t.key: t for t in d.tests}
    assert by_key["data_tests"].evidence.endswith("validate step run(s)")
    assert by_key["staleness"].evidence == "diabetes"
    assert by_key["tuning"].score == 0  # no search ran: the doctor does not flatter
    assert d.ml_test_score == min(d.sections.values())
    shown = _cli("doctor", "--json", cwd=project)
    assert shown.returncode == 0 and json.loads(shown.stdout)["level"] == 4
    text = _cli("doctor", cwd=project).stdout
    assert "level 4" in text and "ML Test Score" in text


def _demo() -> Any:
    from test_loop import demo

    return demo()
