"""``triptych quickstart``: the whole story on the diabetes example, in one command.

In a fresh folder, on the embedded defaults (SQLite + local files): a project scaffolded by
``triptych init`` → its training pipeline with AutoML registers the data, trains, gates and
registers the champion → a deployment served by ``triptych serve`` on a local port →
ordinary traffic, then traffic from a drifting device, with delayed labels → the monitor
sees the drift and the decay → the loop retrains on the live labels, the gate promotes, the
server follows → the loop judges the new champion on live labels and keeps it → a report.
Each step is timed and shown as it runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, TriptychError

DEPLOYMENT = "diabetes"
STARTUP_S = 90


@dataclass
class Step:
    name: str
    seconds: float
    summary: str


@dataclass
class Story:
    """What the quickstart did, step by step, and where to look next."""

    folder: str
    url: str | None = None
    steps: list[Step] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    model: str = ""  # the registry name: the project's package
    level: int | None = None
    look: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(folder: Path, port: int, log: Path) -> Iterator[str]:
    """``triptych serve --deployment diabetes`` in a child process for the block's length."""
    import httpx

    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triptych",
                "serve",
                "--deployment",
                DEPLOYMENT,
                "--port",
                str(port),
            ],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                if proc.poll() is not None:
                    raise TriptychError(
                        f"the server exited ({proc.returncode}) before it was ready",
                        hint=f"see {log}",
                    )
                try:
                    if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TriptychError(
                        f"the server was not ready in {STARTUP_S} s", hint=f"see {log}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def check_folder(folder: Path) -> Path:
    """The folder must be new or empty: the story starts from nothing."""
    folder = folder.expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(
            f"{folder} is not an empty folder",
            hint="give a new folder: triptych quickstart my-first-project",
        )
    return folder


def run(
    folder: Path,
    *,
    budget_s: float = 15.0,
    rows: int = 200,
    port: int | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> Story:
    """Tell the story in ``folder`` (new or empty). ``on_step(name, summary)`` is called as
    each step ends. Raises InvalidInput for a folder in use; TriptychError when a step fails."""
    import os

    from triptych.scaffold import traffic

    folder = check_folder(folder).absolute()
    story = Story(str(folder))
    previous = Path.cwd()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TRIPTYCH_")}

    def step(name: str, action: Callable[[], str]) -> None:
        start = time.perf_counter()
        summary = action()
        story.steps.append(Step(name, round(time.perf_counter() - start, 2), summary))
        if on_step is not None:
            on_step(name, summary)

    try:
        step("project", lambda: _project(folder, story))
        folder = folder.resolve()
        os.chdir(folder)  # the project's embedded store: ./.triptych
        sys.path.insert(0, str(folder / "src"))  # as `pip install -e .` of the project would
        _reset()
        _commit(folder)
        pipeline = folder / "pipelines" / "training.py"
        step("train", lambda: _train(pipeline, story.model, budget_s))
        step("deploy", lambda: _deploy(pipeline, story.model, budget_s))
        log = folder / ".triptych" / "serve.log"
        with serving(folder, port or _free_port(), log) as url:
            story.url = url

            def tick(title: str) -> str:
                from triptych.monitoring import loop

                decision = loop.tick(DEPLOYMENT)
                story.decisions.append(decision.to_dict())
                return f"{title}: {decision.action} — {decision.reason}"

            def ordinary() -> str:
                traffic.phase(url, DEPLOYMENT, *traffic.world(rows, seed=0))
                return tick(f"{rows} patients")

            def drifted() -> str:
                traffic.phase(url, DEPLOYMENT, *traffic.world(rows, seed=1, shift=1.5))
                return tick(f"{rows} patients, new device")

            step("traffic", ordinary)
            step("drift", drifted)
            retrain = story.decisions[-1]
            after = retrain["details"].get("champion_after")
            if retrain["action"] == "retrain" and after != retrain["details"].get(
                "champion_before"
            ):
                traffic.wait_version(url, int(after))

                def watch() -> str:
                    traffic.phase(url, DEPLOYMENT, *traffic.world(rows, seed=2, shift=1.5))
                    return tick(f"v{after} live")

                step("watch", watch)
        step("report", lambda: _report(folder, story))
    finally:
        if str(folder / "src") in sys.path:
            sys.path.remove(str(folder / "src"))
        os.chdir(previous)
        os.environ.update(saved)
        _reset()
    story.look = [
        f"cd {folder}",
        "triptych monitor status",
        f"triptych models history {story.model}",
        f"open {story.report}",
        "triptych doctor",
        "triptych ui",
    ]
    return story


def _reset() -> None:
    from triptych.testing import reset_process_state

    reset_process_state()


def _project(folder: Path, story: Story) -> str:
    from triptych.scaffold import init

    made = init.init(folder, force=True)
    story.model = made.package
    return (
        f"scaffolded {made.name}: src/{made.package}/, pipelines/training.py, params.yaml, "
        f"tests, CI workflows (git {made.git})"
    )


def _commit(folder: Path) -> None:
    """Commit the scaffold, so runs record a commit (the code leg of the fingerprint)."""
    import shutil

    git = shutil.which("git")
    if git is None or not (folder / ".git").exists():
        return
    env = {
        "GIT_AUTHOR_NAME": "triptych quickstart",
        "GIT_AUTHOR_EMAIL": "quickstart@localhost",
        "GIT_COMMITTER_NAME": "triptych quickstart",
        "GIT_COMMITTER_EMAIL": "quickstart@localhost",
        "PATH": "/usr/bin:/bin",
    }
    for args in (["add", "-A"], ["commit", "-qm", "triptych quickstart"]):
        subprocess.run([git, *args], cwd=folder, check=True, capture_output=True, env=env)


def _training_params(budget_s: float) -> dict[str, Any]:
    return {"training.method": "automl", "training.budget_s": budget_s}


def _train(pipeline: Path, model: str, budget_s: float) -> str:
    from triptych.pipelines import runner
    from triptych.tracking.client import Client

    result = runner.run(pipeline, params=_training_params(budget_s))
    champion = Client().store.get_model_version(model, alias="champion")
    return f"pipeline {result.status.lower()}: {model} v{champion.version} is the champion"


def _deploy(pipeline: Path, model: str, budget_s: float) -> str:
    from triptych import deployments
    from triptych.monitoring import monitors, policy

    deployments.create(DEPLOYMENT, f"models:/{model}@champion")
    m = monitors.create(DEPLOYMENT, window="1h")
    policy.set_policy(
        DEPLOYMENT,
        pipeline=str(pipeline),
        min_labels=50,
        retrain_cooldown="10m",
        params=_training_params(budget_s),
        data_param="training.source",
    )
    return f"deployment {DEPLOYMENT} serves models:/{model}@champion, watched against {m.reference}"


def _report(folder: Path, story: Story) -> str:
    from triptych.monitoring import report
    from triptych.scaffold import doctor

    path = folder / "report.html"
    report.write(DEPLOYMENT, path)
    story.report = str(path)
    story.level = doctor.diagnose(folder).level
    return f"{path.name} written; doctor: level {story.level}"


__all__ = ["Story", "check_folder", "run"]
