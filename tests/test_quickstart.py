"""``triptych quickstart`` end to end, as a user runs it: a fresh folder, embedded defaults,
a real server on a local port; and the mistakes it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    return subprocess.run(
        [sys.executable, "-m", "triptych", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_quickstart_tells_the_whole_story(tmp_path: Path) -> None:
    done = _cli("quickstart", "story", "--budget", "5", "--rows", "150", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    story = json.loads(done.stdout)
    project = tmp_path / "story"
    assert story["folder"] == str(project) and story["model"] == "story"
    assert [s["name"] for s in story["steps"]] == [
        "project", "train", "deploy", "traffic", "drift", "watch", "report",
    ]  # fmt: skip
    assert [d["action"] for d in story["decisions"]] == ["none", "retrain", "confirm"]
    retrain = story["decisions"][1]["details"]
    assert (retrain["champion_before"], retrain["champion_after"]) == (1, 2)
    assert retrain["feedback_rows"] == 300
    assert story["level"] == 4
    assert (project / "report.html").is_file() and story["report"] == str(project / "report.html")
    assert "triptych ui" in story["look"]
    # the project is the user's now: its own commands see what the story left
    doctor = json.loads(_cli("doctor", "--json", cwd=project).stdout)
    assert doctor["level"] == 4
    history = _cli("models", "history", "story", cwd=project).stdout
    assert "loop.retrain" in history and "loop.confirm" in history
    status = json.loads(_cli("monitor", "status", "diabetes", "--json", cwd=project).stdout)
    assert status["loop"]["policy"]["triggers"] == ["drift", "performance"]
    assert not (tmp_path / ".triptych").exists()  # nothing written outside the project


def test_quickstart_refuses_a_folder_in_use(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    done = _cli("quickstart", str(used), cwd=tmp_path)
    assert done.returncode == 1 and "is not an empty folder" in done.stderr
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]
