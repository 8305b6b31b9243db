"""The scheduler: fire due schedules, each occurrence once across every scheduler on a store.

A tick reads the enabled schedules, asks :func:`schedules.due` what each should fire, and
claims every due occurrence in the store (:meth:`MetadataStore.claim_firing`). Only the
scheduler whose claim wins launches the pipeline, so running two schedulers (for availability,
or by mistake) never runs a pipeline twice for one occurrence. Firing is at most once: a
scheduler killed between its claim and the launch leaves that firing RUNNING and unrun.

Launches run in background threads, so a long pipeline does not hold up other schedules; the
outcome (run id, FINISHED/FAILED, the error) is recorded on the firing when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from triptych.errors import TriptychError
from triptych.pipelines import schedules
from triptych.store.base import now_ms
from triptych.store.entities import Firing, Schedule

if TYPE_CHECKING:
    from triptych.config import Settings
    from triptych.tracking.client import Client

log = logging.getLogger(__name__)

TAG_SCHEDULE = "triptych.schedule"
TAG_TRIGGER = "triptych.trigger"
ERROR_TAIL = 4000


@dataclass(frozen=True)
class LaunchResult:
    """How a launched pipeline ended: ``FINISHED`` or ``FAILED``, its run, or why it failed."""

    status: str
    run_id: str | None = None
    error: str | None = None


Launcher = Callable[[Schedule, str], LaunchResult]
"""Runs one occurrence of a schedule to its end: ``launcher(schedule, occurrence)``."""


def scheduler_identity() -> str:
    """``host:pid``, recorded on each firing so one can tell which scheduler fired it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _report(stdout: str) -> dict[str, Any] | None:
    """The JSON object ``triptych pipeline run --json`` printed (the last one, if any)."""
    text = stdout.strip()
    try:
        data = json.loads(text)
        return data if isinstance(data, dict) else None
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    starts, position = [], 0
    for line in text.splitlines(keepends=True):
        if line.startswith("{"):
            starts.append(position)
        position += len(line)
    for start in reversed(starts):
        try:
            data, _ = decoder.raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(data, dict) and "run_id" in data:
            return data
    return None


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= ERROR_TAIL else "…" + text[-ERROR_TAIL:]


class SubprocessLauncher:
    """Runs ``triptych pipeline run`` in the schedule's folder as a child process, against the
    same stores as the scheduler (passed as ``TRIPTYCH_*`` environment variables), and waits
    for it. The run is tagged ``triptych.schedule`` and ``triptych.trigger``."""

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        self.settings = settings
        self.timeout = timeout

    def command(self, schedule: Schedule, occurrence: str) -> list[str]:
        cmd = [sys.executable, "-m", "triptych", "pipeline", "run", schedule.pipeline, "--json"]
        cmd += ["--executor", schedule.executor]
        cmd += ["--tag", f"{TAG_SCHEDULE}={schedule.name}", "--tag", f"{TAG_TRIGGER}={occurrence}"]
        for key, value in sorted(schedule.params.items()):
            cmd += ["--param", f"{key}={value}"]
        return cmd

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TRIPTYCH_TRACKING_URI"] = self.settings.tracking_uri
        env["TRIPTYCH_ARTIFACT_URI"] = self.settings.artifact_uri
        if self.settings.s3_endpoint_url:
            env["TRIPTYCH_S3_ENDPOINT_URL"] = self.settings.s3_endpoint_url
        return env

    def __call__(self, schedule: Schedule, occurrence: str) -> LaunchResult:
        try:
            done = subprocess.run(
                self.command(schedule, occurrence),
                cwd=schedule.workdir,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return LaunchResult("FAILED", error=f"the pipeline ran longer than {self.timeout}s")
        except OSError as e:  # e.g. the working folder is gone
            return LaunchResult("FAILED", error=f"could not start the pipeline: {e}")
        report = _report(done.stdout) or {}
        run_id = report.get("run_id") if isinstance(report.get("run_id"), str) else None
        if done.returncode == 0 and report.get("status", "FINISHED") == "FINISHED":
            return LaunchResult("FINISHED", run_id=run_id)
        status = report.get("status") or f"exit code {done.returncode}"
        detail = _tail(done.stderr) or _tail(str(report.get("error") or ""))
        return LaunchResult(
            "FAILED", run_id=run_id, error=f"{status}: {detail}" if detail else status
        )


class Scheduler:
    """Fires due schedules of one store; any number of them may run at once.

    ``launcher`` runs one occurrence (default: :class:`SubprocessLauncher`); ``clock`` gives
    the time in epoch seconds; ``on_fire`` is called with each firing this scheduler won,
    ``on_finish`` with each once it has ended."""

    def __init__(
        self,
        client: Client | None = None,
        launcher: Launcher | None = None,
        clock: Callable[[], float] = time.time,
        *,
        on_fire: Callable[[Firing], None] | None = None,
        on_finish: Callable[[Firing], None] | None = None,
    ) -> None:
        if client is None:
            from triptych.tracking.client import Client

            client = Client()
        self.client = client
        self.launcher: Launcher = launcher or SubprocessLauncher(client.settings)
        self.clock = clock
        self.on_fire = on_fire
        self.on_finish = on_finish
        self.identity = scheduler_identity()
        self._lock = threading.Lock()
        self._running: list[threading.Thread] = []
        self._finished: list[Firing] = []

    def tick(self) -> list[Firing]:
        """Claim and launch every due occurrence; return the firings this scheduler won (still
        RUNNING: :meth:`wait` for their outcome). A schedule that cannot be evaluated is
        logged and skipped; the others still fire."""
        now = self.clock()
        at = int(now * 1000)
        store = self.client.store
        fired: list[Firing] = []
        for schedule in store.list_schedules(enabled_only=True):
            try:
                occurrences = schedules.due(schedule, now, client=self.client)
                for occurrence in occurrences:
                    if store.claim_firing(
                        schedule.schedule_id, occurrence, at=at, fired_by=self.identity
                    ):
                        firing = Firing(schedule.name, occurrence, at, self.identity, "RUNNING")
                        fired.append(firing)
                        if self.on_fire is not None:
                            self.on_fire(firing)
                        self._launch(schedule, firing)
            except TriptychError as e:
                log.warning("schedule %s skipped: %s", schedule.name, e)
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule %s skipped", schedule.name)
        return fired

    def _launch(self, schedule: Schedule, firing: Firing) -> None:
        def work() -> None:
            try:
                result = self.launcher(schedule, firing.occurrence)
            except Exception as e:  # a launcher bug must not lose the firing's record
                result = LaunchResult("FAILED", error=f"{type(e).__name__}: {e}")
            status = "FINISHED" if result.status == "FINISHED" else "FAILED"
            error = result.error
            if status == "FAILED" and not error:
                error = f"the pipeline ended {result.status}"
            ended = replace(
                firing, status=status, run_id=result.run_id, error=error, finished_at=now_ms()
            )
            try:
                self.client.store.record_firing_result(
                    schedule.schedule_id,
                    firing.occurrence,
                    status=status,
                    run_id=result.run_id,
                    error=error,
                    at=ended.finished_at,
                )
            except TriptychError as e:  # e.g. the schedule was deleted meanwhile
                log.warning(
                    "could not record firing %s of %s: %s", firing.occurrence, firing.schedule, e
                )
            with self._lock:
                self._finished.append(ended)
            if self.on_finish is not None:
                self.on_finish(ended)

        thread = threading.Thread(target=work, name=f"triptych-schedule-{schedule.name}")
        with self._lock:
            self._running = [t for t in self._running if t.is_alive()]
            self._running.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> list[Firing]:
        """Wait for this scheduler's launches to end (up to ``timeout`` seconds in all) and
        return the firings that ended since the last call, with their outcome."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._lock:
            finished, self._finished = self._finished, []
            self._running = [t for t in self._running if t.is_alive()]
        return finished

    def run(self, interval: float = 30.0, stop_event: threading.Event | None = None) -> None:
        """Tick every ``interval`` seconds until ``stop_event`` is set (or Ctrl-C), then wait
        for the pipelines already launched. A store that is briefly unreachable is retried on
        the next tick."""
        stop = stop_event or threading.Event()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except TriptychError as e:
                    log.warning("scheduler tick failed, retrying in %ss: %s", interval, e)
                stop.wait(interval)
        finally:
            self.wait()
