"""``triptych reproduce``: re-run a run from its fingerprint in a real git repository.

Scripts run as a user runs them (a subprocess in a temporary git checkout); reproduce runs
through the CLI; the refusals are driven through the service on runs built in the store.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import triptych
from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.pipelines.reproduce import REPRODUCES_TAG, compare_metrics, reproduce
from triptych.store.entities import CodeState, Environment, Run, RunSpec, RunStatus
from triptych.tracking import fingerprint as fp

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "examples" / "diabetes" / "train.py"
TINY = """\
import sys, time
import triptych

with triptych.start_run(name="tiny"):
    triptych.log_metric("stable", 1.0)
    triptych.set_tag("python", sys.executable)
    if "--clock" in sys.argv:
        triptych.log_metric("clock", time.time())
"""


class Project:
    """A git repository with the diabetes script and a tiny one, and a triptych home."""

    def __init__(self, root: Path) -> None:
        self.repo = root / "repo"
        self.home = root / "home"
        self.repo.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
        self.env["TRIPTYCH_HOME"] = str(self.home)
        self.git("init", "-q")
        self.git("config", "user.email", "ds@example.com")
        self.git("config", "user.name", "Data Scientist")
        shutil.copy(TRAIN, self.repo / "train.py")
        (self.repo / "tiny.py").write_text(TINY)
        self.git("add", ".")
        self.git("commit", "-q", "-m", "scripts")
        self.commit = self.git("rev-parse", "HEAD")
        self.client = triptych.Client(
            f"sqlite:///{self.home / 'triptych.db'}", str(self.home / "artifacts")
        )

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.repo, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def python(self, *args: str) -> Run:
        """Run a script of the repository; returns the run it logged."""
        done = subprocess.run(
            [sys.executable, *args], cwd=self.repo, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return self.client.search_runs(max_results=1).items[0]

    def reproduce(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "triptych", "reproduce", *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
        )

    def worktrees(self) -> list[str]:
        return [
            line
            for line in self.git("worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")
        ]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


# -- reproducing ---------------------------------------------------------------------------------
def test_a_script_run_is_reproduced_with_the_dataset_version_it_used(project: Project) -> None:
    original = project.python("train.py", "--alpha", "0.5")
    assert json.loads(original.tags[fp.ARGV_TAG]) == ["--alpha", "0.5"]
    # A newer version of the data: @latest would now train on other rows.
    full = triptych.data.load("datasets:/diabetes@1", client=project.client)
    assert triptych.data.add("diabetes", full.head(300), client=project.client).version == 2

    done = project.reproduce(original.run_id[:8], "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reproduced"] is True
    assert result["pins"] == {"diabetes": 1}
    assert result["fingerprint_same"] == {"code": True, "data": True, "environment": True}
    [mse] = [m for m in result["metrics"] if m["key"] == "mse"]
    assert mse["status"] == "same" and mse["reproduced"] == original.metrics["mse"]
    new = project.client.get_run(result["new_run_id"])
    assert new.run_id != original.run_id and new.tags[REPRODUCES_TAG] == original.run_id
    assert "datasets:/diabetes@1" in {i.source for i in new.inputs}
    assert new.experiment_id == original.experiment_id
    assert "running in" in done.stderr and "diabetes@1 pinned" in done.stderr
    assert len(project.worktrees()) == 1  # the temporary worktree is gone


def test_an_uncommitted_change_is_reproduced_from_the_recorded_diff(project: Project) -> None:
    script = project.repo / "train.py"
    script.write_text(
        script.read_text().replace(
            'triptych.log_metric("mse", mse)',
            'triptych.log_metric("mse", mse)\n        triptych.log_metric("patched", 1.0)',
        )
    )
    original = project.python("train.py", "--alpha", "0.7")
    assert original.fingerprint is not None and original.fingerprint.code.diff_digest
    project.git("checkout", "--", "train.py")  # the checkout is clean again: only the diff has it

    done = project.reproduce(original.run_id)
    assert done.returncode == 0, done.stderr
    assert "+ the recorded diff" in done.stderr
    assert "reproduced" in done.stdout and "patched" in done.stdout
    new_id = done.stderr.split("new run ")[-1].split()[0]
    new = project.client.get_run(new_id)
    assert new.metrics["patched"] == 1.0 and new.metrics["mse"] == original.metrics["mse"]
    assert new.fingerprint is not None
    assert new.fingerprint.code.digest == original.fingerprint.code.digest
    assert project.git("status", "--porcelain") == ""
    assert len(project.worktrees()) == 1


def test_a_metric_that_changes_is_reported_and_exits_1(project: Project) -> None:
    original = project.python("tiny.py", "--clock")
    done = project.reproduce(original.run_id)
    assert done.returncode == 1, done.stderr
    assert "differs" in done.stdout and "clock" in done.stdout.split("differs")[-1]
    assert "stable" in done.stdout  # the identical one is listed too

    # Seconds apart out of ~1.7e9: well within a relative tolerance of 1e-3.
    done = project.reproduce(original.run_id, "--tolerance", "1e-3", "--json")
    assert done.returncode == 0, done.stderr
    statuses = {m["key"]: m["status"] for m in json.loads(done.stdout)["metrics"]}
    assert statuses == {"clock": "within tolerance", "stable": "same"}


def test_compare_metrics_lists_both_sides() -> None:
    rows = compare_metrics(
        {"a": 1.0, "b": 2.0, "gone": 3.0, "nan": math.nan},
        {"a": 1.0, "b": 2.5, "new": 4.0, "nan": math.nan},
        tolerance=0.1,
    )
    assert {r.key: r.status for r in rows} == {
        "a": "same",
        "b": "differs",  # 0.5 / 2.5 = 0.2 > 0.1
        "gone": "only in original",
        "new": "only in reproduction",
        "nan": "same",
    }
    assert [r.difference for r in rows if r.key == "b"] == [0.5]
    assert [r.ok for r in compare_metrics({"x": 100.0}, {"x": 105.0}, tolerance=0.05)] == [True]


# -- refusals --------------------------------------------------------------------------------------
def _stored_run(
    project: Project,
    tags: dict[str, str] | None = None,
    parent: Run | None = None,
    **code: str | None,
) -> Run:
    """A finished run built in the store, as a script in the project would have recorded it."""
    fields = {"commit": project.commit, "entry_point": "tiny.py", **code}
    state = CodeState(**fields, digest="0" * 64)  # type: ignore[arg-type]
    env = fp.environment()
    project.client.store.put_environment(env)
    store = project.client.store
    run = store.create_run(
        RunSpec(
            experiment_id=store.get_or_create_experiment("Default").experiment_id,
            name="stored",
            parent_run_id=parent.run_id if parent else None,
            tags={fp.ARGV_TAG: "[]"} if tags is None else tags,
            code=state,
            env_digest=env.digest,
            fingerprint="f" * 64,
        )
    )
    store.update_run(run.run_id, status=RunStatus.FINISHED)
    return store.get_run(run.run_id)


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        (
            {"entry_point": "<interactive>"},
            InvalidInput,
            "started interactively; nothing to re-run",
        ),
        ({"commit": None}, InvalidInput, "not in a git checkout when it ran"),
        ({"diff_digest": "ab" * 32}, InvalidInput, "the uncommitted diff was not recorded"),
        ({"commit": "1" * 40}, NotFound, f"commit {'1' * 40} of run"),
        ({"entry_point": "/elsewhere/train.py"}, InvalidInput, "was outside its git checkout"),
    ],
)
def test_what_cannot_be_reproduced_is_refused(
    project: Project, code: dict[str, str | None], error: type[Exception], message: str
) -> None:
    run = _stored_run(project, **code)
    with pytest.raises(error, match=message):
        reproduce(run.run_id, client=project.client, repository=project.repo)
    assert len(project.worktrees()) == 1
    assert [r.run_id for r in project.client.search_runs().items] == [run.run_id]  # nothing ran


def test_runs_without_arguments_nested_or_still_running_are_refused(project: Project) -> None:
    def refused(run: Run, error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=message):
            reproduce(run.run_id, client=project.client, repository=project.repo)

    refused(_stored_run(project, tags={}), InvalidInput, "arguments of run .* were not recorded")
    parent = _stored_run(project)
    child = _stored_run(project, parent=parent)
    refused(child, InvalidInput, f"reproduce the parent: triptych reproduce {parent.run_id}")
    project.client.store.update_run(parent.run_id, status=RunStatus.RUNNING)
    refused(parent, Conflict, "still RUNNING")
    assert len(project.worktrees()) == 1


def test_a_redacted_secret_argument_is_refused_by_the_cli(project: Project) -> None:
    original = project.python("tiny.py", "--api-token", "s3cr3t", "--db", "pg://me:pw@db/x")
    recorded = original.tags[fp.ARGV_TAG]
    assert "s3cr3t" not in recorded and "pw@" not in recorded
    assert json.loads(recorded) == ["--api-token", "***", "--db", "pg://me:***@db/x"]
    done = project.reproduce(original.run_id)
    assert done.returncode == 1
    assert "redacted when recorded: --api-token, pg://me:***@db/x" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(project.client.search_runs().items) == 1


def test_a_deleted_dataset_version_is_refused(project: Project) -> None:
    import pandas as pd

    triptych.data.add("toy", pd.DataFrame({"x": [1, 2, 3]}), client=project.client)
    run = _stored_run(project)
    project.client.log_input(run.run_id, "datasets:/toy@1")
    triptych.data.delete("toy@1", force=True, client=project.client)
    with pytest.raises(NotFound, match=r"dataset version toy@1, used by run .* \(deleted\)"):
        reproduce(run.run_id, client=project.client, repository=project.repo)


def test_reproduce_outside_the_repository_says_where_to_run(
    project: Project, tmp_path: Path
) -> None:
    run = _stored_run(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(InvalidInput, match="is not in a git checkout") as caught:
        reproduce(run.run_id, client=project.client, repository=elsewhere)
    assert project.commit[:12] in (caught.value.hint or "")


# -- what runs record for it ---------------------------------------------------------------------
def test_command_line_arguments_are_recorded_with_secrets_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["train.py", "--alpha", "0.5", "--password", "hunter2", "--api-key=xyz", "-v"]
    monkeypatch.setattr(sys, "argv", argv)
    with triptych.start_run() as run:
        pass
    recorded = triptych.Client().get_run(run.run_id).tags[fp.ARGV_TAG]
    assert json.loads(recorded) == ["--alpha", "0.5", "--password", "***", "--api-key=***", "-v"]
    assert fp.redacted_args(json.loads(recorded)) == ["--password", "--api-key=***"]
    # A flag without a value, and values of ordinary flags, stay as they are.
    assert fp.command_args(["--token", "--secret-file=/x", "--monkey", "m", "-k", "v"]) == [
        "--token",
        "--secret-file=***",
        "--monkey",
        "***",
        "-k",
        "v",
    ]


def test_run_tags_from_the_environment_go_on_top_level_runs_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIPTYCH_RUN_TAGS", json.dumps({REPRODUCES_TAG: "abc", "team": "env"}))
    with (
        triptych.start_run(tags={"team": "explicit"}) as top,
        triptych.start_run(nested=True) as child,
    ):
        pass
    client = triptych.Client()
    tags = client.get_run(top.run_id).tags
    assert tags[REPRODUCES_TAG] == "abc" and tags["team"] == "explicit"
    assert REPRODUCES_TAG not in client.get_run(child.run_id).tags
    monkeypatch.setenv("TRIPTYCH_RUN_TAGS", "[1, 2]")
    with pytest.raises(InvalidInput, match="TRIPTYCH_RUN_TAGS must be a JSON object"):
        triptych.start_run()


def test_dataset_pins_resolve_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    for n in (1, 2, 3):
        triptych.data.add("toy", pd.DataFrame({"x": list(range(n))}))
    triptych.data.add("other", pd.DataFrame({"y": [1]}))
    monkeypatch.setenv("TRIPTYCH_DATASET_PINS", '{"toy": 2}')
    assert triptych.data.get("datasets:/toy@latest").version == 2
    assert triptych.data.get("toy").version == 2
    assert len(triptych.data.load("toy@latest")) == 2
    assert triptych.data.get("toy@3").version == 3  # explicit versions are untouched
    assert triptych.data.get("other@latest").version == 1
    monkeypatch.setenv("TRIPTYCH_DATASET_PINS", '{"toy": 1}')  # a new value is read again
    assert triptych.data.get("toy@latest").version == 1
    monkeypatch.setenv("TRIPTYCH_DATASET_PINS", '{"toy": "one"}')
    with pytest.raises(InvalidInput, match="TRIPTYCH_DATASET_PINS"):
        triptych.data.get("toy")
    monkeypatch.delenv("TRIPTYCH_DATASET_PINS")
    assert triptych.data.get("toy").version == 3


# -- rebuilding the environment ------------------------------------------------------------------
# Enough for tiny.py (import triptych, log a metric): a short list keeps the build under a
# minute; the whole development environment (~170 packages) takes ~3 minutes.
SMALL_ENV = (
    "alembic",
    "filelock",
    "fsspec",
    "mako",
    "markupsafe",
    "pip",
    "sqlalchemy",
    "triptych",
    "typing-extensions",
)


@pytest.mark.slow
def test_rebuild_env_runs_in_a_fresh_environment_with_the_recorded_packages(
    project: Project,
) -> None:
    current = fp.environment()
    missing = [p for p in SMALL_ENV if p not in current.packages]
    assert not missing, missing
    packages = {p: current.packages[p] for p in SMALL_ENV}
    payload = {
        "python": current.python,
        "implementation": sys.implementation.name,
        "platform": current.platform,
        "packages": packages,
    }
    env = Environment(
        fp.sha256_text(json.dumps(payload, sort_keys=True)),
        current.python,
        current.platform,
        packages,
    )
    code = {"commit": project.commit, "diff": None, "entry": "tiny.py"}
    state = CodeState(project.commit, None, None, "tiny.py", None, fp.sha256_text(json.dumps(code)))
    store = project.client.store
    store.put_environment(env)
    run = store.create_run(
        RunSpec(
            experiment_id=store.get_or_create_experiment("Default").experiment_id,
            name="tiny",
            tags={fp.ARGV_TAG: "[]"},
            code=state,
            env_digest=env.digest,
            fingerprint="f" * 64,
        )
    )
    store.log_metric(run.run_id, "stable", 1.0)
    store.update_run(run.run_id, status=RunStatus.FINISHED)

    done = project.reproduce(run.run_id, "--rebuild-env", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reproduced"] is True and result["rebuilt_env"] is True
    new = project.client.get_run(result["new_run_id"])
    assert new.tags["python"] != sys.executable and "triptych-reproduce-" in new.tags["python"]
    assert new.fingerprint is not None
    rebuilt = project.client.get_environment(new.fingerprint.env_digest)
    assert dict(rebuilt.packages) == packages  # exactly the list: nothing more, nothing less
    assert result["environment_same"] is True and result["package_changes"] == []
    assert not Path(new.tags["python"]).exists()  # the environment was removed afterwards


# -- pipelines ------------------------------------------------------------------------------------
PIPELINE = ROOT / "examples" / "diabetes" / "pipeline.py"


@pytest.mark.skipif(not PIPELINE.exists(), reason="waiting for pipeline run")
def test_reproduce_on_a_diabetes_pipeline_run_reports_identical_metrics(project: Project) -> None:
    shutil.copytree(ROOT / "examples", project.repo / "examples")
    project.git("add", ".")
    project.git("commit", "-q", "-m", "examples")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "triptych",
            "pipeline",
            "run",
            "examples/diabetes/pipeline.py",
            "--json",
        ],
        cwd=project.repo,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    done = project.reproduce(run_id, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["reproduced"] is True and result["kind"] == "pipeline"
    compared = {(m["step"], m["key"]): m for m in result["metrics"]}
    assert {("evaluate", "mse"), ("register", "mse")} <= set(compared)  # each step's metrics
    assert all(m["status"] == "same" for m in result["metrics"])
    assert compared[("evaluate", "mse")]["original"] == pytest.approx(3298.89, abs=0.01)
    new = project.client.get_run(result["new_run_id"])
    assert new.tags[REPRODUCES_TAG] == run_id and new.tags["triptych.pipeline.name"] == "diabetes"
