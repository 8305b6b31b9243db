"""Runs across processes: concurrent writers, exits, crashes and the heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import triptych
from triptych.store.entities import RunStatus

PROCESSES = 8
POINTS = 5_000


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    env.update(extra)
    return env


def _child(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


LOGGER = """
    import triptych
    with triptych.start_run(experiment="load") as run:
        triptych.log_param("pid", __import__("os").getpid())
        for i in range(POINTS):
            triptych.log_metric("x", float(i), step=i)
    print(run.run_id)
""".replace("POINTS", str(POINTS))


def _many_writers(tmp_path: Path, **extra: str) -> None:
    # A short flush interval makes the writers' transactions interleave as much as possible.
    env = _env(tmp_path / "home", TRIPTYCH_FLUSH_INTERVAL="0.05", **extra)
    children = [_child(LOGGER, env) for _ in range(PROCESSES)]
    run_ids = []
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err
        run_ids.append(out.strip())
    uri = extra.get("TRIPTYCH_TRACKING_URI", f"sqlite:///{tmp_path / 'home' / 'triptych.db'}")
    client = triptych.Client(uri)
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        history = client.get_metric_history(run_id, "x")
        assert [m.step for m in history] == list(range(POINTS))  # every point, once, in order
        assert run.metrics["x"] == POINTS - 1


@pytest.mark.slow
def test_eight_processes_on_one_new_sqlite_file(tmp_path: Path) -> None:
    """Also covers eight processes migrating a brand-new database at the same moment."""
    _many_writers(tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_processes_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _many_writers(tmp_path, TRIPTYCH_TRACKING_URI=postgres_url)


def test_nothing_logged_before_normal_exit_is_lost(tmp_path: Path) -> None:
    """No flush, no end_run, no context manager: the exit hook ends the run and flushes."""
    code = """
        import triptych
        run = triptych.start_run(experiment="exit")
        print(run.run_id, flush=True)
        for i in range(20_000):
            triptych.log_metric("x", float(i), step=i)
    """
    child = _child(code, _env(tmp_path / "home", TRIPTYCH_FLUSH_INTERVAL="30"))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    client = triptych.Client(f"sqlite:///{tmp_path / 'home' / 'triptych.db'}")
    run = client.get_run(out.strip())
    assert run.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run.run_id, "x")) == 20_000


def test_uncaught_exception_fails_the_open_run(tmp_path: Path) -> None:
    code = """
        import triptych
        run = triptych.start_run(experiment="crash")
        print(run.run_id, flush=True)
        triptych.log_metric("before", 1.0)
        raise RuntimeError("boom")
    """
    child = _child(code, _env(tmp_path / "home"))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 1 and "RuntimeError: boom" in err
    client = triptych.Client(f"sqlite:///{tmp_path / 'home' / 'triptych.db'}")
    run = client.get_run(out.strip())
    assert run.status is RunStatus.FAILED and run.metrics["before"] == 1.0


def test_sigkilled_run_is_failed_after_heartbeat_timeout(tmp_path: Path) -> None:
    code = """
        import time, triptych
        run = triptych.start_run(experiment="killed")
        print(run.run_id, flush=True)
        while True:
            time.sleep(0.05)
    """
    env = _env(
        tmp_path / "home", TRIPTYCH_HEARTBEAT_INTERVAL="0.2", TRIPTYCH_HEARTBEAT_TIMEOUT="1.5"
    )
    child = _child(code, env)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    uri = f"sqlite:///{tmp_path / 'home' / 'triptych.db'}"
    try:
        time.sleep(2.5)  # longer than the timeout: only heartbeats keep it RUNNING
        alive = triptych.Client(uri).get_run(run_id)
        assert alive.status is RunStatus.RUNNING
        assert alive.heartbeat_time is not None and alive.heartbeat_time > alive.start_time
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while True:
        run = triptych.Client(uri).get_run(run_id)  # each new client sweeps stale runs
        if run.status is not RunStatus.RUNNING or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert run.status is RunStatus.FAILED
    assert "heartbeat" in run.tags["triptych.status_reason"]
    assert run.end_time is not None and run.end_time <= int(time.time() * 1000)
