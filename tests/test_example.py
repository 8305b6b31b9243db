"""The reference example end to end: train, gate, register; a worse alpha keeps the champion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import triptych

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "diabetes" / "train.py"


def _train(home: Path, alpha: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--alpha", alpha], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_worse_alpha_keeps_the_champion_and_records_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "gate: first model" in _train(home, "0.5")
    out = _train(home, "2")
    assert "gate: refused: mse 3592.01 does not beat champion v1 3298.89" in out
    client = triptych.Client(f"sqlite:///{home / 'triptych.db'}", str(home / "artifacts"))
    champion = client.store.get_model_version("diabetes", alias="champion")
    assert champion.version == 1
    gates = [e for e in client.store.model_history("diabetes") if e.action == "gate"]
    assert [g.details["passed"] for g in gates] == [True, False]  # type: ignore[index]
    loser = client.get_run(gates[1].details["run_id"])  # type: ignore[index]
    assert loser.tags["triptych.gate.diabetes"] == "refused"
    assert "does not beat" in loser.tags["triptych.gate.diabetes.reason"]
    assert triptych.data.get("datasets:/diabetes@latest", client=client).version == 1  # no dup
