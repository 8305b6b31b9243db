"""Several schedulers over one store fire each due occurrence exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from triptych.pipelines import schedules
from triptych.pipelines.scheduler import LaunchResult, Scheduler, SubprocessLauncher
from triptych.store.entities import DatasetVersionSpec, Schedule
from triptych.tracking.client import Client

DAY = 86_400.0
PIPELINE = """\
from triptych.pipelines import pipeline, step


@step
def hello() -> dict:
    return {"ok": 1}


@pipeline
def tiny():
    hello()
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'triptych.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _setup(client: Client, folder: Path) -> list[str]:
    """Seven schedules, each with one occurrence due two days from now; returns their names."""
    path = folder / "tiny.py"
    path.write_text(PIPELINE)
    names = []
    for i, cron in enumerate(["0 3 * * *", "*/5 * * * *", "@hourly", "30 * * * *", "@daily"]):
        names.append(schedules.create(f"cron-{i}", str(path), cron=cron, client=client).name)
    names.append(schedules.create("data", str(path), on_dataset="ds", client=client).name)
    names.append(schedules.create("alert", str(path), on_alert="*", client=client).name)
    time.sleep(0.01)
    client.store.create_dataset_version(DatasetVersionSpec("ds", "a" * 64, "b" * 64, 1, 1))
    schedules.notify_alert("drift", {"psi": 0.4}, client=client)
    return names


def _expect_once_each(lines: list[str], names: list[str]) -> None:
    fired = Counter(tuple(line.split()[:2]) for line in lines)
    assert sorted(name for name, _ in fired) == sorted(names)  # every schedule fired…
    assert set(fired.values()) == {1}, fired  # …each occurrence once


def test_schedulers_in_threads_fire_each_occurrence_once(tmp_path: Path) -> None:
    client = Client(f"sqlite:///{tmp_path / 'triptych.db'}")
    names = _setup(client, tmp_path)
    lines: list[str] = []
    lock = threading.Lock()

    def launcher(schedule: Schedule, occurrence: str) -> LaunchResult:
        with lock:
            lines.append(f"{schedule.name} {occurrence}")
        return LaunchResult("FINISHED")

    later = time.time() + 2 * DAY
    barrier = threading.Barrier(8)

    def run_one() -> None:
        scheduler = Scheduler(Client(client.settings.tracking_uri), launcher, clock=lambda: later)
        barrier.wait()
        scheduler.tick()
        scheduler.wait()

    threads = [threading.Thread(target=run_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _expect_once_each(lines, names)
    for name in names:
        assert [f.status for f in schedules.firings(name, client=client)] == ["FINISHED"]


SCHEDULER_PROCESS = """
    import os, sys, time
    from triptych.pipelines.scheduler import LaunchResult, Scheduler
    from triptych.tracking.client import Client

    uri, out, later, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])

    def launcher(schedule, occurrence):
        with open(out, "a") as f:  # one small O_APPEND write per line: lines never interleave
            f.write(f"{schedule.name} {occurrence} {os.getpid()}\\n")
        return LaunchResult("FINISHED")

    scheduler = Scheduler(Client(uri), launcher, clock=lambda: later)
    scheduler.client.store.list_schedules()  # connect before the start line
    time.sleep(max(0.0, start_at - time.time()))
    print(len(scheduler.tick()))
    scheduler.wait()
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.update(extra)
    return env


def test_scheduler_processes_fire_each_occurrence_once(tmp_path: Path, store_uri: str) -> None:
    client = Client(store_uri, str(tmp_path / "artifacts"))
    names = _setup(client, tmp_path)
    out = tmp_path / "fired.txt"
    out.touch()
    later = str(time.time() + 2 * DAY)  # one clock for all: the same occurrences are due
    start_at = time.time() + 3.0  # every process is connected by then, and they go at once
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(SCHEDULER_PROCESS),
                store_uri,
                str(out),
                later,
                str(start_at),
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    won = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        won.append(int(stdout))
    lines = out.read_text().splitlines()
    _expect_once_each(lines, names)
    assert sum(won) == len(names)
    for name in names:
        assert len(schedules.firings(name, client=client)) == 1


# -- the real thing: `triptych scheduler --once` launching `triptych pipeline run` ----------------
def _scheduler_commands(env: dict[str, str], cwd: Path, n: int = 2) -> list[list[dict[str, str]]]:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "triptych", "scheduler", "--once", "--json"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    reports = []
    for child in children:
        stdout, stderr = child.communicate(timeout=240)
        assert child.returncode == 0, stderr
        reports.append(json.loads(stdout))
    return reports


def test_two_scheduler_commands_run_a_due_pipeline_once(tmp_path: Path, store_uri: str) -> None:
    artifacts = str(tmp_path / "artifacts")
    client = Client(store_uri, artifacts)
    (tmp_path / "tiny.py").write_text(PIPELINE)
    schedules.create("tiny", "tiny.py", on_alert="drift", workdir=tmp_path, client=client)
    event = schedules.notify_alert("drift", {"psi": 0.4}, client=client)
    env = _env(TRIPTYCH_TRACKING_URI=store_uri, TRIPTYCH_ARTIFACT_URI=artifacts)
    elsewhere = tmp_path / "elsewhere"  # the scheduler runs anywhere; the pipeline in its folder
    elsewhere.mkdir()
    reports = _scheduler_commands(env, elsewhere)
    fired = [f for report in reports for f in report]
    assert len(fired) == 1, reports
    firing = fired[0]
    assert (firing["schedule"], firing["occurrence"]) == ("tiny", f"alert:{event.event_id}")
    assert firing["status"] == "FINISHED", firing["error"]
    run = client.get_run(firing["run_id"])
    assert run.status.value == "FINISHED"
    assert run.tags["triptych.schedule"] == "tiny"
    assert run.tags["triptych.trigger"] == f"alert:{event.event_id}"
    assert run.tags["triptych.pipeline.name"] == "tiny"
    stored = schedules.firings("tiny", client=client)
    assert [(f.status, f.run_id) for f in stored] == [("FINISHED", firing["run_id"])]
    assert _scheduler_commands(env, elsewhere, n=1) == [[]]  # nothing left to fire


def test_a_failing_pipeline_is_recorded_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        PIPELINE.replace('return {"ok": 1}', 'raise ValueError("the data is gone")')
    )
    client = Client()
    schedules.create("broken", "broken.py", on_alert="*", client=client)
    schedules.notify_alert("drift", client=client)
    scheduler = Scheduler(client)
    scheduler.tick()
    (ended,) = scheduler.wait(timeout=240)
    assert ended.status == "FAILED" and ended.run_id
    assert "the data is gone" in str(ended.error)
    assert client.get_run(ended.run_id).status.value == "FAILED"


def test_launcher_command_and_a_workdir_that_vanished(tmp_path: Path) -> None:
    client = Client()
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "tiny.py").write_text(PIPELINE)
    made = schedules.create(
        "tiny", "tiny.py", cron="@daily", params={"b": "2", "a": "x=y"}, executor="ray",
        workdir=tmp_path / "job", client=client,
    )  # fmt: skip
    launcher = SubprocessLauncher(client.settings)
    assert launcher.command(made, "2026-01-01T00:00:00Z")[3:] == [
        "pipeline", "run", made.pipeline, "--json", "--executor", "ray",
        "--tag", "triptych.schedule=tiny", "--tag", "triptych.trigger=2026-01-01T00:00:00Z",
        "--param", "a=x=y", "--param", "b=2",
    ]  # fmt: skip
    env = launcher.environment()
    assert env["TRIPTYCH_TRACKING_URI"] == client.settings.tracking_uri
    assert env["TRIPTYCH_ARTIFACT_URI"] == client.settings.artifact_uri
    (tmp_path / "job" / "tiny.py").unlink()
    (tmp_path / "job").rmdir()
    result = launcher(made, "2026-01-01T00:00:00Z")
    assert result.status == "FAILED" and "could not start" in str(result.error)


def test_run_ticks_until_stopped(tmp_path: Path) -> None:
    client = Client()
    (tmp_path / "tiny.py").write_text(PIPELINE)
    schedules.create("on-drift", "tiny.py", on_alert="drift", client=client)
    launched = threading.Event()

    def launcher(schedule: Schedule, occurrence: str) -> LaunchResult:
        launched.set()
        return LaunchResult("FINISHED", run_id="r" * 32)

    stop = threading.Event()
    loop = threading.Thread(target=Scheduler(client, launcher).run, args=(0.05, stop))
    loop.start()
    try:
        time.sleep(0.2)  # a few idle ticks
        assert not launched.is_set()
        schedules.notify_alert("drift", client=client)
        assert launched.wait(timeout=30)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert [f.status for f in schedules.firings("on-drift", client=client)] == ["FINISHED"]


def test_scheduler_command_loop_prints_json_lines(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(PIPELINE)
    home = tmp_path / "home"
    client = Client(f"sqlite:///{home / 'triptych.db'}", str(home / "artifacts"))
    schedules.create("on-drift", "tiny.py", on_alert="drift", client=client)
    child = subprocess.Popen(
        [sys.executable, "-m", "triptych", "scheduler", "--interval", "0.2", "--json"],
        env=_env(TRIPTYCH_HOME=str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        schedules.notify_alert("drift", client=client)
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        ended = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert (started["schedule"], started["status"]) == ("on-drift", "RUNNING")
    assert (ended["occurrence"], ended["status"]) == (started["occurrence"], "FINISHED")
    assert client.get_run(ended["run_id"]).tags["triptych.schedule"] == "on-drift"
    assert child.returncode == 130 and "Ctrl-C to stop" in stderr
