"""Schedules: what is due when, the triggers, the errors, and the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from triptych.errors import AlreadyExists, InvalidInput, NotFound
from triptych.pipelines import schedules
from triptych.pipelines.scheduler import LaunchResult, Scheduler
from triptych.store.entities import DatasetVersionSpec, Firing, Schedule
from triptych.tracking.client import Client

PIPELINE = """\
from triptych.pipelines import pipeline, step


@step
def hello() -> dict:
    return {"ok": 1}


@pipeline
def tiny():
    hello()
"""


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


def _cron(spec: str, active_since: float, last: str | None = None) -> Schedule:
    firing = None if last is None else Firing("s", last, 0, None, "FINISHED")
    return Schedule(
        1, "s", "/p.py", "/", "cron", spec, {}, "local", True, 0, None,
        int(active_since * 1000), firing,
    )  # fmt: skip


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(PIPELINE)
    return path


class Recorder:
    """An in-process launcher: records what it was asked to run."""

    def __init__(self, result: LaunchResult | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.result = result or LaunchResult("FINISHED", run_id="r" * 32)
        self._lock = threading.Lock()

    def __call__(self, schedule: Schedule, occurrence: str) -> LaunchResult:
        with self._lock:
            self.calls.append((schedule.name, occurrence))
        return self.result


def _tick(client: Client, launcher: Recorder, now: float | None = None) -> list[Firing]:
    scheduler = Scheduler(client, launcher, clock=(lambda: now) if now else time.time)
    scheduler.tick()
    return scheduler.wait(timeout=30)


# -- cron: what is due --------------------------------------------------------------------------
CREATED = _utc(2026, 1, 1, 0, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (_utc(2026, 1, 1, 2, 59, 59) + 0.999, []),  # one millisecond before: not yet
        (_utc(2026, 1, 1, 3, 0, 0), ["2026-01-01T03:00:00Z"]),  # exactly at the occurrence
        (_utc(2026, 1, 1, 3, 0, 59), ["2026-01-01T03:00:00Z"]),
        (_utc(2026, 1, 2, 2, 59, 59), ["2026-01-01T03:00:00Z"]),  # still the latest
        (_utc(2026, 1, 2, 3, 0, 0), ["2026-01-02T03:00:00Z"]),
    ],
)
def test_cron_occurrence_at_the_boundaries(now: float, expected: list[str]) -> None:
    assert schedules.due(_cron("0 3 * * *", CREATED), now) == expected


def test_occurrences_before_creation_do_not_fire() -> None:
    created_after = _cron("0 3 * * *", _utc(2026, 1, 1, 3, 0, 1))
    assert schedules.due(created_after, _utc(2026, 1, 1, 12, 0)) == []
    assert schedules.due(created_after, _utc(2026, 1, 2, 3, 0)) == ["2026-01-02T03:00:00Z"]


def test_missed_occurrences_are_skipped_not_caught_up() -> None:
    # Three nightly occurrences passed with no scheduler running: one firing, the latest.
    now = _utc(2026, 1, 4, 12, 0)
    assert schedules.due(_cron("0 3 * * *", CREATED), now) == ["2026-01-04T03:00:00Z"]
    fired = _cron("0 3 * * *", CREATED, last="2026-01-04T03:00:00Z")
    assert schedules.due(fired, now) == []  # already fired: nothing more until tomorrow
    older = _cron("0 3 * * *", CREATED, last="2026-01-01T03:00:00Z")
    assert schedules.due(older, now) == ["2026-01-04T03:00:00Z"]


def test_every_fifteen_minutes_and_macros() -> None:
    now = _utc(2026, 1, 1, 10, 44, 30)
    assert schedules.due(_cron("*/15 * * * *", CREATED), now) == ["2026-01-01T10:30:00Z"]
    assert schedules.due(_cron("@daily", CREATED), now) == ["2026-01-01T00:00:00Z"]
    nxt = schedules.next_cron_time("*/15 * * * *", now)
    assert nxt == datetime(2026, 1, 1, 10, 45, tzinfo=timezone.utc)


# -- creating schedules: errors write nothing -----------------------------------------------------
@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("bad", "invalid cron expression"),
        ("61 * * * *", "invalid cron expression"),
        ("0 3 * * * *", "invalid cron expression"),  # six fields (seconds) are not standard
        ("", "invalid cron expression"),
        ("@reboot", "invalid cron expression"),
        ("0 3 30 2 *", "never matches"),  # February 30th
    ],
)
def test_bad_cron_is_refused_and_writes_nothing(
    client: Client, pipeline_file: Path, cron: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        schedules.create("nightly", str(pipeline_file), cron=cron, client=client)
    assert caught.value.hint
    assert client.store.list_schedules() == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.py", "does not exist"),
        ("notes.txt", "not a Python file"),
        ("broken.py", "does not parse"),
        ("tiny.py:nope", "defines no function 'nope'"),
    ],
)
def test_bad_pipeline_target_is_refused_and_writes_nothing(
    client: Client, pipeline_file: Path, target: str, message: str
) -> None:
    (pipeline_file.parent / "notes.txt").write_text("hi")
    (pipeline_file.parent / "broken.py").write_text("def (:\n")
    with pytest.raises(InvalidInput, match=message):
        schedules.create("nightly", target, cron="0 3 * * *", client=client)
    assert client.store.list_schedules() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"cron": "0 3 * * *", "on_alert": "drift"},
        {"on_dataset": "diabetes", "on_alert": "*", "cron": "@daily"},
    ],
)
def test_exactly_one_trigger_is_required(
    client: Client, pipeline_file: Path, kwargs: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput, match="exactly one trigger"):
        schedules.create("s", str(pipeline_file), client=client, **kwargs)  # type: ignore[arg-type]
    assert client.store.list_schedules() == []


def test_bad_executor_workdir_and_names_write_nothing(
    client: Client, pipeline_file: Path, tmp_path: Path
) -> None:
    path = str(pipeline_file)
    with pytest.raises(InvalidInput, match="executor"):
        schedules.create("s", path, cron="@daily", executor="spark", client=client)
    with pytest.raises(InvalidInput, match="does not exist"):
        schedules.create("s", path, cron="@daily", workdir=tmp_path / "gone", client=client)
    with pytest.raises(InvalidInput, match="schedule name"):
        schedules.create("has space", path, cron="@daily", client=client)
    with pytest.raises(InvalidInput, match="dataset name"):
        schedules.create("s", path, on_dataset="a/b", client=client)
    with pytest.raises(InvalidInput, match="param"):
        schedules.create("s", path, cron="@daily", params={"bad key!": 1}, client=client)
    assert client.store.list_schedules() == []


def test_create_resolves_the_pipeline_and_refuses_duplicates(
    client: Client, pipeline_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    made = schedules.create(
        None, "tiny.py:tiny", cron=" 0  3 * * * ", workdir=tmp_path,
        params={"alpha": 0.5}, executor="ray://head:10001", client=client,
    )  # fmt: skip
    assert made.name == "tiny-tiny"  # from the file and function
    assert made.pipeline == f"{pipeline_file.resolve()}:tiny"  # absolute, relative to workdir
    assert (made.workdir, made.spec, dict(made.params)) == (
        str(tmp_path.resolve()), "0 3 * * *", {"alpha": "0.5"},
    )  # fmt: skip
    with pytest.raises(AlreadyExists, match="tiny-tiny") as caught:
        schedules.create(None, str(pipeline_file) + ":tiny", on_alert="*", client=client)
    assert "--name" in str(caught.value.hint)
    assert [s.kind for s in schedules.list(client=client)] == ["cron"]
    schedules.delete("tiny-tiny", client=client)
    with pytest.raises(NotFound):
        schedules.get("tiny-tiny", client=client)


# -- triggers, end to end through a scheduler with an in-process launcher ------------------------
def _version(client: Client, name: str, n: int) -> None:
    spec = DatasetVersionSpec(name, f"{n:064x}", "b" * 64, rows=1, size=1)
    client.store.create_dataset_version(spec)


def test_dataset_trigger_fires_once_per_new_version(client: Client, pipeline_file: Path) -> None:
    _version(client, "diabetes", 1)  # before the schedule: never fires
    time.sleep(0.01)
    schedules.create("retrain", str(pipeline_file), on_dataset="diabetes", client=client)
    launcher = Recorder()
    assert _tick(client, launcher) == []
    time.sleep(0.01)
    _version(client, "diabetes", 2)
    _version(client, "other", 1)
    ended = _tick(client, launcher)
    assert [(f.occurrence, f.status, f.run_id) for f in ended] == [
        ("dataset:diabetes@2", "FINISHED", "r" * 32)
    ]
    assert _tick(client, launcher) == []  # the same version never fires twice
    _version(client, "diabetes", 3)
    _version(client, "diabetes", 4)  # two versions between ticks: one run, on the newest
    assert [f.occurrence for f in _tick(client, launcher)] == ["dataset:diabetes@4"]
    assert launcher.calls == [("retrain", "dataset:diabetes@2"), ("retrain", "dataset:diabetes@4")]
    last = schedules.get("retrain", client=client).last_firing
    assert last is not None and last.occurrence == "dataset:diabetes@4"


def test_alert_trigger_fires_on_notify_alert(client: Client, pipeline_file: Path) -> None:
    schedules.create("on-drift", str(pipeline_file), on_alert="drift:diabetes", client=client)
    schedules.create("on-any", str(pipeline_file), on_alert="*", client=client)
    launcher = Recorder()
    assert _tick(client, launcher) == []
    latency = schedules.notify_alert("latency", {"p99_ms": 900}, client=client)
    assert [(f.schedule, f.occurrence) for f in _tick(client, launcher)] == [
        ("on-any", f"alert:{latency.event_id}")
    ]
    drift = schedules.notify_alert("drift:diabetes", {"psi": 0.31}, client=client)
    assert drift.payload == {"psi": 0.31}
    fired = sorted((f.schedule, f.occurrence) for f in _tick(client, launcher))
    assert fired == [("on-any", f"alert:{drift.event_id}"), ("on-drift", f"alert:{drift.event_id}")]
    assert _tick(client, launcher) == []


def test_paused_schedule_does_not_fire(client: Client, pipeline_file: Path) -> None:
    schedules.create("on-drift", str(pipeline_file), on_alert="drift", client=client)
    schedules.pause("on-drift", client=client)
    launcher = Recorder()
    schedules.notify_alert("drift", client=client)
    assert _tick(client, launcher) == []
    time.sleep(0.01)
    schedules.resume("on-drift", client=client)
    assert _tick(client, launcher) == []  # the alert came while paused
    schedules.notify_alert("drift", client=client)
    assert len(_tick(client, launcher)) == 1
    assert [f.status for f in schedules.firings("on-drift", client=client)] == ["FINISHED"]


def test_a_failing_launch_is_recorded_and_others_still_fire(
    client: Client, pipeline_file: Path
) -> None:
    schedules.create("a", str(pipeline_file), on_alert="*", client=client)
    schedules.create("b", str(pipeline_file), on_alert="*", client=client)

    def launcher(schedule: Schedule, occurrence: str) -> LaunchResult:
        if schedule.name == "a":
            raise RuntimeError("no such executor")
        return LaunchResult("KILLED", run_id="k" * 32)

    schedules.notify_alert("x", client=client)
    scheduler = Scheduler(client, launcher)
    scheduler.tick()
    ended = {f.schedule: f for f in scheduler.wait(timeout=30)}
    assert (ended["a"].status, ended["a"].error) == ("FAILED", "RuntimeError: no such executor")
    assert (ended["b"].status, ended["b"].run_id) == ("FAILED", "k" * 32)
    assert "KILLED" in str(ended["b"].error)
    stored = schedules.firings("a", client=client)[0]
    assert (stored.status, stored.error) == ("FAILED", "RuntimeError: no such executor")


# -- the commands -------------------------------------------------------------------------------
def cli(*args: str, home: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "triptych", *args], capture_output=True, text=True, env=env
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_schedule_commands_json(pipeline_file: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = json.loads(
        cli(
            "pipeline", "schedule", str(pipeline_file), "--cron", "0 3 * * *",
            "--param", "alpha=0.5", "--json", home=home,
        ).stdout
    )  # fmt: skip
    assert (made["name"], made["trigger"], made["params"], made["enabled"]) == (
        "tiny", {"kind": "cron", "spec": "0 3 * * *"}, {"alpha": "0.5"}, True,
    )  # fmt: skip
    assert made["next_due"] > time.time() * 1000
    cli("pipeline", "schedule", str(pipeline_file), "-n", "drift", "--on-alert", "*", home=home)
    listed = json.loads(cli("pipeline", "schedules", "--json", home=home).stdout)
    assert [(s["name"], s["next_due"] is None) for s in listed] == [
        ("drift", True),
        ("tiny", False),
    ]
    assert "tiny" in cli("pipeline", "schedules", home=home).stdout  # the table
    cli("pipeline", "pause", "tiny", home=home)
    paused = json.loads(cli("pipeline", "schedules", "--json", home=home).stdout)[1]
    assert (paused["enabled"], paused["next_due"]) == (False, None)
    cli("pipeline", "resume", "tiny", home=home)
    assert json.loads(cli("scheduler", "--once", "--json", home=home).stdout) == []
    assert json.loads(cli("pipeline", "firings", "tiny", "--json", home=home).stdout) == []
    cli("pipeline", "unschedule", "drift", home=home)
    listed = json.loads(cli("pipeline", "schedules", "--json", home=home).stdout)
    assert [s["name"] for s in listed] == ["tiny"]


def test_schedule_command_errors_are_one_line_and_write_nothing(
    pipeline_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    for args in (
        ("--cron", "0 3 30 2 *"),
        ("--cron", "every night"),
        ("--cron", "@daily", "--on-alert", "x"),
        ("--cron", "@daily", "--param", "alpha"),
    ):
        done = cli("pipeline", "schedule", str(pipeline_file), *args, home=home, ok=False)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
        assert "fix:" in done.stderr
    done = cli("pipeline", "schedule", "nope.py", "--cron", "@daily", home=home, ok=False)
    assert done.returncode == 1 and "does not exist" in done.stderr
    done = cli("pipeline", "unschedule", "nope", home=home, ok=False)
    assert done.returncode == 1 and "not found" in done.stderr
    assert json.loads(cli("pipeline", "schedules", "--json", home=home).stdout) == []
