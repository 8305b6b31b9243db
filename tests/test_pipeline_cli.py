"""``triptych pipeline run/show/list``, the diabetes pipeline, and resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from triptych.tracking.client import Client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "pipeline.py"


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "triptych", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def test_the_diabetes_pipeline_caches_and_reruns_downstream_of_a_change(tmp_path: Path) -> None:
    first = json.loads(cli("pipeline", "run", str(EXAMPLE), "--json", cwd=tmp_path).stdout)
    assert first["status"] == "FINISHED"
    steps = {s["name"]: s for s in first["steps"]}
    assert list(steps) == ["ingest", "validate", "split", "train", "evaluate", "register"]
    assert all(s["cache"] == "miss" for s in steps.values())
    client = Client()
    evaluate = client.get_run(steps["evaluate"]["run_id"])
    assert evaluate.metrics["mse"] == pytest.approx(3298.9, abs=0.05)  # same as train.py
    champion = client.store.get_model_version("diabetes", alias="champion")
    assert champion.version == 1 and champion.run_id == steps["register"]["run_id"]
    run = client.get_run(first["run_id"])
    assert [i.name for i in run.inputs] == ["diabetes@1"]  # the data leg: the dataset version

    second = json.loads(cli("pipeline", "run", str(EXAMPLE), "--json", cwd=tmp_path).stdout)
    assert {s["name"]: s["cache"] for s in second["steps"]} == dict.fromkeys(steps, "hit")

    third = cli("pipeline", "run", str(EXAMPLE), "--param", "train.alpha=2", "--json", cwd=tmp_path)
    caches = {s["name"]: s["cache"] for s in json.loads(third.stdout)["steps"]}
    assert caches == {
        "ingest": "hit",
        "validate": "hit",
        "split": "hit",
        "train": "miss",
        "evaluate": "miss",
        "register": "miss",
    }
    # the gate refused the worse model: the champion is still version 1
    assert client.store.get_model_version("diabetes", alias="champion").version == 1

    shown = json.loads(cli("pipeline", "show", str(EXAMPLE), "--json", cwd=tmp_path).stdout)
    assert shown["run_id"] == json.loads(third.stdout)["run_id"]
    assert {s["name"]: (s["status"], s["cache"]) for s in shown["steps"]}["train"] == (
        "FINISHED",
        "miss",
    )
    tree = cli("pipeline", "show", "diabetes", cwd=tmp_path).stdout
    assert "register" in tree and "also split, train" in tree
    listed = json.loads(cli("pipeline", "list", "--json", cwd=tmp_path).stdout)
    assert [p["pipeline"] for p in listed] == ["diabetes"]


def test_cli_errors_are_one_line_and_failures_exit_1(tmp_path: Path) -> None:
    done = cli("pipeline", "run", "missing.py", cwd=tmp_path, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "no pipeline file at missing.py" in done.stderr
    (tmp_path / "p.py").write_text(
        textwrap.dedent(
            """
            from triptych.pipelines import pipeline, step

            @step
            def boom(x: int = 1) -> dict:
                raise RuntimeError("no luck")

            @pipeline
            def p():
                boom()
            """
        )
    )
    done = cli("pipeline", "run", "p.py", "--param", "x", cwd=tmp_path, check=False)
    assert done.returncode == 1 and "--param 'x' is not key=value" in done.stderr
    done = cli("pipeline", "run", "p.py", "--executor", "spark", cwd=tmp_path, check=False)
    assert done.returncode == 1 and "unknown executor 'spark'" in done.stderr
    done = cli("pipeline", "run", "p.py", cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert "step 'boom' failed: RuntimeError: no luck" in done.stderr
    assert "Traceback" not in done.stderr  # it is in the step run, not on the terminal
    done = cli("pipeline", "show", "nothing-ran", cwd=tmp_path, check=False)
    assert done.returncode == 1 and "no pipeline 'nothing-ran' has run" in done.stderr


RESUMABLE = """
import time
from pathlib import Path
from triptych.pipelines import pipeline, step

@step
def first() -> dict:
    return {"v": 1}

@step(cache=False)
def second(x: dict) -> dict:
    return {"v": x["v"] + 1}

@step
def third(x: dict) -> dict:
    Path("third-started").write_text("")
    while not Path("release").exists():
        time.sleep(0.05)
    return {"v": x["v"] * 10}

@pipeline
def resumable():
    third(second(first()))
"""


def test_killing_mid_pipeline_then_rerunning_resumes_from_finished_steps(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(RESUMABLE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "triptych", "pipeline", "run", "p.py"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "third-started").exists():
        assert proc.poll() is None, "the pipeline ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (tmp_path / "release").write_text("")
    again = json.loads(cli("pipeline", "run", "p.py", "--json", cwd=tmp_path).stdout)
    caches = {s["name"]: s["cache"] for s in again["steps"]}
    # first: the cache; second (cache=False): the killed run's finished step; third: computed
    assert caches == {"first": "hit", "second": "resumed", "third": "miss"}
    assert again["status"] == "FINISHED"
    # once that run finished, a cache=False step computes again
    after = json.loads(cli("pipeline", "run", "p.py", "--json", cwd=tmp_path).stdout)
    assert {s["name"]: s["cache"] for s in after["steps"]}["second"] == "off"
