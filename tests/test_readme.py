"""The README's commands run, so they never rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import triptych

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", README, re.S)
    assert match, f"README.md has no bash block after <!-- {marker} -->"
    return match.group(1).strip()


def test_quickstart_runs_the_example_and_lists_the_run(tmp_path: Path) -> None:
    """The first command, less its `pip install -e .` (this environment is that install)."""
    command = block_after("quickstart")
    steps = [s.strip() for s in command.split("&&")]
    assert steps[0] == "pip install -e ."
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(tmp_path / "home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        " && ".join(steps[1:]), shell=True, cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "mse=3298.9" in done.stdout  # alpha 0.5 on the random_state=0 split
    assert "ridge-0.5" in done.stdout and "FINISHED" in done.stdout
    home = tmp_path / "home"
    client = triptych.Client(f"sqlite:///{home / 'triptych.db'}", str(home / "artifacts"))
    (run,) = client.search_runs().items
    files = [a.path for a in client.list_artifacts(run.run_id, "model")]
    assert files == ["model/input_example.json", "model/manifest.json", "model/model.skops"]
    model = triptych.load_model(f"runs:/{run.run_id}/model", client=client)
    assert model.signature.inputs[0].name == "age"
    assert {i.name for i in run.inputs} == {"diabetes@1", "split.train", "split.test"}


def test_test_command_is_what_ci_runs() -> None:
    command = block_after("test-command")
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci  # CI reads the command from the README
