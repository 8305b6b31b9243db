"""The ``triptych`` command, run as a user runs it: a real process, real stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import triptych


def cli(*args: str, home: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    if home is not None:
        env["TRIPTYCH_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "triptych", *args], capture_output=True, text=True, env=env
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Three runs of a small grid, logged through the Python API into a home folder."""
    home = tmp_path / "home"
    triptych.set_tracking_uri(
        f"sqlite:///{home / 'triptych.db'}", artifact_uri=str(home / "artifacts")
    )
    for alpha in (0.1, 0.5, 1.0):
        with triptych.start_run(experiment="grid", name=f"ridge-{alpha}"):
            triptych.log_params({"alpha": alpha, "model": "Ridge"})
            triptych.log_metric("mse", 3000 + 100 * alpha)
            triptych.log_text("notes", "notes.txt")
    return home


def _ids(home: Path, *args: str) -> list[str]:
    return [r["run_id"] for r in json.loads(cli("runs", "list", "--json", *args, home=home).stdout)]


def test_help_and_version() -> None:
    out = cli("--help").stdout
    for command in ("info", "experiments", "runs"):
        assert command in out
    assert cli("--version").stdout.strip() == f"triptych {triptych.__version__}"
    assert "compare" in cli("runs", "--help").stdout


def test_info_says_where_each_value_came_from(tmp_path: Path) -> None:
    data = json.loads(cli("info", "--json", home=tmp_path / "h").stdout)
    assert data["settings"]["home"] == {"value": str(tmp_path / "h"), "source": "env TRIPTYCH_HOME"}
    assert data["settings"]["tracking_uri"]["source"] == "default (under home)"
    assert "TRIPTYCH_HOME" in cli("info", home=tmp_path / "h").stdout


def test_info_never_prints_a_password(tmp_path: Path) -> None:
    env = {**os.environ, "TRIPTYCH_TRACKING_URI": "postgresql://ana:s3cr3t@db.example/t"}
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "info"], capture_output=True, text=True, env=env
    )
    assert "s3cr3t" not in done.stdout + done.stderr and "***" in done.stdout


def test_runs_list_table_json_filter_and_sort(home: Path) -> None:
    table = cli("runs", "list", home=home).stdout
    for name in ("ridge-0.1", "ridge-0.5", "ridge-1.0", "FINISHED", "mse", "alpha"):
        assert name in table
    runs = json.loads(cli("runs", "list", "--json", home=home).stdout)
    assert [r["name"] for r in runs] == ["ridge-1.0", "ridge-0.5", "ridge-0.1"]
    assert runs[0]["metrics"] == {"mse": 3100.0} and runs[0]["fingerprint"]["digest"]
    best = json.loads(
        cli(
            "runs", "list", "--json", "-f", "metrics.mse < 3090", "-s", "metrics.mse", home=home
        ).stdout
    )
    assert [r["name"] for r in best] == ["ridge-0.1", "ridge-0.5"]
    assert len(_ids(home, "-e", "grid", "-n", "2")) == 2


def test_runs_show_prints_the_fingerprint(home: Path) -> None:
    run_id = _ids(home)[0]
    out = cli("runs", "show", run_id[:7], home=home).stdout
    run = triptych.Client(f"sqlite:///{home / 'triptych.db'}").get_run(run_id)
    assert run.fingerprint is not None
    for text in (run_id, run.fingerprint.digest, "environment", "notes.txt", "alpha", "mse"):
        assert text in out
    data = json.loads(cli("runs", "show", run_id, "--json", home=home).stdout)
    assert data["fingerprint"]["digest"] == run.fingerprint.digest
    assert data["environment"]["packages"]["sqlalchemy"]
    assert data["artifacts"][0]["path"] == "notes.txt"


def test_runs_compare_side_by_side(home: Path) -> None:
    a, b = _ids(home)[:2]
    out = cli("runs", "compare", a, b, home=home).stdout
    assert "alpha" in out and "1.0" in out and "0.5" in out and "mse" in out
    data = json.loads(cli("runs", "compare", a, b, "--json", home=home).stdout)
    assert data["params"]["alpha"] == ["1.0", "0.5"] and data["metrics"]["mse"] == [3100.0, 3050.0]


def test_runs_delete_and_restore(home: Path) -> None:
    victim = _ids(home)[0]
    assert victim in cli("runs", "delete", victim, home=home).stdout
    assert victim not in _ids(home) and victim in _ids(home, "--all")
    cli("runs", "restore", victim[:8], home=home)
    assert victim in _ids(home)


def test_experiments_commands(home: Path) -> None:
    assert "grid" in cli("experiments", "list", home=home).stdout
    cli("experiments", "create", "second", home=home)
    names = [e["name"] for e in json.loads(cli("experiments", "list", "--json", home=home).stdout)]
    assert names == ["grid", "second"]
    dup = cli("experiments", "create", "second", home=home, ok=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "list", "--filter", "metrics.mse <"), "expected number"),
        (("runs", "list", "--sort", "weird.key"), "unknown entity"),
        (("runs", "show", "ffffffff"), "no run id starts with"),
        (("runs", "show", "../../etc"), "invalid run id"),
        (("experiments", "delete", "nope"), "not found"),
    ],
)
def test_errors_are_one_line_with_a_fix_and_no_traceback(
    home: Path, args: tuple[str, ...], message: str
) -> None:
    done = cli(*args, home=home, ok=False)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()  # one line: the problem and the fix
    assert line.startswith("error:") and "(fix: " in line
    debug = cli("--debug", *args, home=home, ok=False)
    assert "Traceback" in debug.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = cli("runs", "lst", home=tmp_path, ok=False)
    assert done.returncode == 2 and "No such command" in done.stderr


def test_empty_store_says_how_to_start(tmp_path: Path) -> None:
    assert "no runs found" in cli("runs", "list", home=tmp_path / "h").stdout
    assert "no experiments yet" in cli("experiments", "list", home=tmp_path / "h").stdout
