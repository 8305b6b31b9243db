"""``triptych ci``: the gates in order, stopping at the first failure, and the gate decision
the training pipeline's registration step recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from triptych.errors import InvalidInput
from triptych.scaffold import gates
from triptych.scaffold import init as scaffold


def _project(root: Path, unit: str, data: str = "def test_ok():\n    assert True\n") -> Path:
    for folder, text in (("unit", unit), ("data", data)):
        (root / "tests" / folder).mkdir(parents=True)
        (root / "tests" / folder / f"test_{folder}.py").write_text(text)
    return root


def test_only_takes_gates_in_their_order_and_refuses_a_typo() -> None:
    assert gates.parse_only(["gate,lint", "unit"]) == ["lint", "unit", "gate"]
    assert gates.parse_only(None) == list(gates.GATES)
    with pytest.raises(InvalidInput, match="no gate 'tests'"):
        gates.parse_only(["tests"])


def test_a_failing_gate_stops_the_rest_unless_keep_going(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "def test_broken():\n    assert 1 == 2\n")
    report = gates.run(root, only=["unit", "data"])
    assert [(g.name, g.status) for g in report.gates] == [("unit", "failed"), ("data", "skipped")]
    assert not report.passed
    assert "1 failed" in report.gates[0].detail and "assert 1 == 2" in report.gates[0].output
    assert report.gates[1].detail == "not run: an earlier gate failed"
    report = gates.run(root, only=["unit", "data"], keep_going=True)
    assert [(g.name, g.status) for g in report.gates] == [("unit", "failed"), ("data", "passed")]


def test_missing_ruff_and_missing_tests_are_skips_not_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gates, "ruff_command", lambda: None)
    report = gates.run(tmp_path, only=["lint", "unit", "data"])
    assert {g.name: g.status for g in report.gates} == dict.fromkeys(
        ("lint", "unit", "data"), "skipped"
    )
    assert "ruff is not installed" in report.gates[0].detail
    assert report.passed


def test_train_then_gate_reads_the_registration_decision(tmp_path: Path) -> None:
    root = Path(scaffold.init(tmp_path / "gate-demo", git=False).path)
    report = gates.run(root, only=["train", "gate"])
    assert report.passed, report.to_dict()
    assert report.gates[1].detail.startswith("gate_demo: first model")
    # A worse model: the pipeline succeeds, the gate refuses it and fails.
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("alpha: 0.5 ", "alpha: 5.0 "))
    report = gates.run(root, only=["train", "gate"])
    assert [g.status for g in report.gates] == ["passed", "failed"]
    assert "refused: mse" in report.gates[1].detail
    # The gate alone reads the latest training run of the store.
    alone = gates.run(root, only=["gate"])
    assert alone.gates[0].detail == report.gates[1].detail
    assert (root / ".triptych").is_dir() and not (tmp_path / ".triptych").exists()


def test_the_gate_fails_when_the_pipeline_never_ran(tmp_path: Path) -> None:
    root = Path(scaffold.init(tmp_path / "never-ran", git=False).path)
    report = gates.run(root, only=["gate"])
    assert report.gates[0].status == "failed"
    assert "has not run" in report.gates[0].detail


def test_the_cli_prints_json_and_exits_1_on_a_failure(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "def test_broken():\n    assert False\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "ci", str(root), "--only", "unit,data", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False
    assert [g["status"] for g in report["gates"]] == ["failed", "skipped"]
    table = subprocess.run(
        [sys.executable, "-m", "triptych", "ci", str(root), "--only", "data"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr
    assert "passed" in table.stdout and "data" in table.stdout


def test_a_pipeline_that_does_not_import_fails_the_train_gate(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "training.py").write_text("import not_a_module_anywhere\n")
    report = gates.run(tmp_path, only=["train"])
    assert report.gates[0].status == "failed"
    assert "ModuleNotFoundError" in report.gates[0].detail


def test_the_tests_see_the_project_code_without_an_install(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "p", "from mypkg import VALUE\n\n\ndef test_value():\n    assert VALUE == 3\n"
    )
    (root / "src" / "mypkg").mkdir(parents=True)
    (root / "src" / "mypkg" / "__init__.py").write_text("VALUE = 3\n")
    report = gates.run(root, only=["unit"])
    assert report.gates[0].status == "passed", report.gates[0].output
