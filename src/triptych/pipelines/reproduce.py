"""Reproduce a run from its fingerprint, and say whether its metrics came out the same.

The code is the recorded commit checked out in a temporary git worktree, with the recorded
uncommitted diff applied; the data are the recorded dataset versions (``@latest`` is pinned
through ``$TRIPTYCH_DATASET_PINS``); the environment is the current one, compared with the
recorded one, or (``rebuild_env``) a fresh virtual environment with the recorded packages.
Anything that cannot be reproduced faithfully is refused up front with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import Conflict, IntegrityError, InvalidInput, NotFound, TriptychError
from triptych.pipelines import runner
from triptych.pipelines.venv import (
    PackageChange,
    Report,
    bindir,
    build_environment,
    package_changes,
    stream,
)
from triptych.store.base import now_ms
from triptych.store.entities import Environment, Run, RunStatus
from triptych.tracking import fingerprint as fp
from triptych.tracking.client import Client

REPRODUCES_TAG = "triptych.reproduces"
PIPELINE_FILE_TAG = runner.TAG_FILE
PIPELINE_NAME_TAG = runner.TAG_PIPELINE
PIPELINE_ARTIFACT = runner.PIPELINE_ARTIFACT
STEP_TAG = runner.TAG_STEP
PIPELINE_RUN_TAG = runner.TAG_PARENT
RUN_TAGS_ENV = "TRIPTYCH_RUN_TAGS"
PINS_ENV = "TRIPTYCH_DATASET_PINS"


@dataclass(frozen=True)
class MetricComparison:
    """One metric of the original run (or of one of its pipeline steps) against the re-run."""

    step: str | None  # None: the run itself; else the pipeline step
    key: str
    original: float | None
    reproduced: float | None
    status: str  # same, within tolerance, differs, only in original, only in reproduction

    @property
    def difference(self) -> float | None:
        if self.original is None or self.reproduced is None:
            return None
        return self.reproduced - self.original

    @property
    def ok(self) -> bool:
        return self.status in ("same", "within tolerance")


@dataclass
class Reproduction:
    """What ``reproduce`` did and found."""

    run_id: str
    kind: str  # "script" or "pipeline"
    command: list[str]
    commit: str
    diff_applied: bool
    pins: dict[str, int]
    tolerance: float
    rebuilt_env: bool
    new_run_id: str = ""
    environment_same: bool = False
    package_changes: list[PackageChange] = field(default_factory=list)
    fingerprint_same: dict[str, bool] = field(default_factory=dict)  # code, data, environment
    metrics: list[MetricComparison] = field(default_factory=list)
    worktree: str | None = None  # kept with keep=True
    venv: str | None = None  # the rebuilt environment, kept with keep=True

    @property
    def reproduced(self) -> bool:
        return all(m.ok for m in self.metrics)

    @property
    def differences(self) -> list[MetricComparison]:
        return [m for m in self.metrics if not m.ok]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reproduced"] = self.reproduced
        for item, metric in zip(data["metrics"], self.metrics, strict=True):
            item["difference"] = metric.difference
        return data


@dataclass
class _Plan:
    run: Run
    kind: str
    args: list[str]  # after the interpreter
    commit: str
    diff: bytes
    pins: dict[str, int]
    children: list[Run]


def reproduce(
    run_id: str,
    *,
    rebuild_env: bool = False,
    tolerance: float = 0.0,
    keep: bool = False,
    client: Client | None = None,
    report: Report | None = None,
    repository: str | Path | None = None,
) -> Reproduction:
    """Re-run ``run_id`` (a full id or a unique prefix) from its fingerprint and compare every
    metric: equal, or within the relative ``tolerance``, is reproduced.

    ``repository`` is the git checkout holding the recorded commit (default: the one around
    the current folder). ``keep`` leaves the worktree (and virtual environment) in place.
    Raises InvalidInput / NotFound / Conflict when the run cannot be reproduced faithfully,
    and TriptychError when the re-run itself fails."""
    if not tolerance >= 0:
        raise InvalidInput(f"tolerance must be >= 0, got {tolerance}")
    client = client or Client()
    say: Report = report or (lambda kind, text: None)
    run = client.find_run(run_id)
    plan = _plan(client, run)
    repo = _repository(Path(repository) if repository else Path.cwd(), plan)
    recorded_env = _recorded_environment(client, run, rebuild_env)
    result = Reproduction(
        run_id=run.run_id,
        kind=plan.kind,
        command=["python", *plan.args],
        commit=plan.commit,
        diff_applied=bool(plan.diff),
        pins=plan.pins,
        tolerance=tolerance,
        rebuilt_env=rebuild_env,
    )
    say("step", f"{plan.kind} run {run.run_id} ({run.name}): {' '.join(result.command)}")
    diff_note = f" + the recorded diff ({len(plan.diff)} bytes)" if plan.diff else ""
    say("step", f"code: commit {plan.commit[:12]}{diff_note}, in a temporary worktree")
    pinned = ", ".join(f"{k}@{v}" for k, v in sorted(plan.pins.items()))
    say("step", f"data: {pinned or 'no registered dataset versions'} pinned")
    if recorded_env is not None and not rebuild_env:
        changes = package_changes(recorded_env, fp.environment())
        same = "same as recorded" if not changes else f"{len(changes)} difference(s)"
        say("step", f"environment: current one, {same}")
        for c in changes:
            say("step", f"  {c.name}: {c.recorded or '-'} recorded, {c.current or '-'} now")

    tmp = Path(tempfile.mkdtemp(prefix="triptych-reproduce-"))
    worktree = tmp / "worktree"
    added = False
    try:
        _git(repo, "worktree", "add", "--detach", str(worktree), plan.commit)
        added = True
        if plan.diff:
            _git(worktree, "apply", "--whitespace=nowarn", "-", stdin=plan.diff)
        python, venv = sys.executable, None
        if recorded_env is not None and rebuild_env:
            say("step", f"environment: building {len(recorded_env.packages)} packages")
            venv = tmp / "venv"
            python = str(build_environment(recorded_env, venv, worktree, say))
            result.venv = str(venv) if keep else None
        started = now_ms()
        say("step", f"running in {worktree}")
        env = _child_env(client, run, plan, worktree, venv)
        stream([python, *plan.args], worktree, env, say, "output")
        new_run = _new_run(client, plan, started)
    finally:
        if keep:
            result.worktree = str(worktree) if added else None
        else:
            if added:
                _remove_worktree(repo, worktree)
            shutil.rmtree(tmp, ignore_errors=True)
    result.new_run_id = new_run.run_id
    say("step", f"new run {new_run.run_id}")
    _compare(client, plan, new_run, recorded_env, result)
    return result


# -- what to run ---------------------------------------------------------------------------------
def _plan(client: Client, run: Run) -> _Plan:
    """The command, code and data pins of ``run``; refuses what cannot be reproduced."""
    rid = run.run_id
    if run.status is RunStatus.RUNNING:
        raise Conflict(f"run {rid} is still RUNNING", hint="reproduce it once it has ended")
    if run.fingerprint is None:
        raise InvalidInput(
            f"run {rid} recorded no fingerprint (it was imported or created without capture)",
            hint="only runs started by triptych.start_run or a pipeline can be reproduced",
        )
    code = run.fingerprint.code
    pipeline_file = run.tags.get(PIPELINE_FILE_TAG)
    if pipeline_file is not None:
        kind, args = "pipeline", _pipeline_args(client, run, pipeline_file)
        children = _children(client, run)
    else:
        if run.parent_run_id:
            raise InvalidInput(
                f"run {rid} is a nested run: its code is its parent's",
                hint=f"reproduce the parent: triptych reproduce {run.parent_run_id}",
            )
        kind, args, children = "script", _script_args(run), []
    if not code.commit:
        raise InvalidInput(
            f"run {rid} was not in a git checkout when it ran: there is no commit to check out",
            hint="runs started inside a git checkout record their commit",
        )
    diff = b""
    if code.diff_digest:
        try:
            diff = client.read_artifact(rid, fp.DIFF_ARTIFACT)
        except NotFound:
            raise InvalidInput(
                f"run {rid} ran with uncommitted changes, but the uncommitted diff was not "
                f"recorded (no artifact {fp.DIFF_ARTIFACT})",
                hint="its code cannot be rebuilt; commit before running to make runs reproducible",
            ) from None
        if hashlib.sha256(diff).hexdigest() != code.diff_digest:
            raise IntegrityError(
                f"the recorded diff of run {rid} does not match its digest {code.diff_digest[:12]}"
            )
    return _Plan(run, kind, args, code.commit, diff, _pins(client, [run, *children]), children)


def _script_args(run: Run) -> list[str]:
    entry = run.fingerprint.code.entry_point if run.fingerprint else None
    rid = run.run_id
    if not entry or entry == "<interactive>":
        raise InvalidInput(
            f"run {rid} was started interactively; nothing to re-run",
            hint="runs of a script (python train.py) or module (python -m pkg) can be reproduced",
        )
    raw = run.tags.get(fp.ARGV_TAG)
    if raw is None:
        raise InvalidInput(
            f"the command-line arguments of run {rid} were not recorded "
            "(a run from an older triptych, or arguments longer than a tag)",
            hint="re-run the script by hand from the commit shown by: triptych runs show",
        )
    argv = [str(a) for a in json.loads(raw)]
    redacted = fp.redacted_args(argv)
    if redacted:
        raise InvalidInput(
            f"run {rid} had a secret-looking argument, redacted when recorded: "
            f"{', '.join(redacted)}; it cannot be re-run as it was",
            hint="pass secrets through environment variables rather than arguments",
        )
    if entry.startswith("-m "):
        return ["-m", entry[3:], *argv]
    if os.path.isabs(entry):
        raise InvalidInput(
            f"the script of run {rid} ({entry}) was outside its git checkout",
            hint="keep scripts inside the repository so that the commit records them",
        )
    return [entry, *argv]


def _pipeline_args(client: Client, run: Run, file: str) -> list[str]:
    """``-m triptych pipeline run FILE --param step.key=value … --tag …`` for a pipeline run."""
    try:
        recorded = json.loads(client.read_artifact(run.run_id, PIPELINE_ARTIFACT))
        # JSON is YAML, which --param reads: every value keeps its type.
        params = {
            f"{step}.{key}": json.dumps(value)
            for step, values in recorded.get("params", {}).items()
            for key, value in values.items()
        }
        if recorded.get("function"):
            file = f"{file}:{recorded['function']}"  # the one pipeline, in a file of several
    except NotFound:
        params = dict(run.params)  # also recorded as run params <step>.<key>, as text
    experiment = client.get_experiment(run.experiment_id).name
    args = ["-m", "triptych", "pipeline", "run", file, "--experiment", experiment]
    for key, text in sorted(params.items()):
        args += ["--param", f"{key}={text}"]
    # No cache: a cache hit would copy the original's outputs instead of computing them.
    args += ["--executor", "local", "--no-cache"]
    return [*args, "--tag", f"{REPRODUCES_TAG}={run.run_id}"]


def _children(client: Client, run: Run) -> list[Run]:
    """The step runs of a pipeline run, oldest first."""
    found = client.store.iter_runs(
        [run.experiment_id], f"tags.`{PIPELINE_RUN_TAG}` = '{run.run_id}'"
    )
    return sorted((r for r in found if r.parent_run_id == run.run_id), key=lambda r: r.start_time)


def _pins(client: Client, runs: Iterable[Run]) -> dict[str, int]:
    """``{dataset: version}`` of the registered versions the runs used; refuses when one is
    gone or holds other data now. Of two versions of one dataset, the newer is pinned (it
    was ``@latest`` then)."""
    from triptych.data import registry

    pins: dict[str, int] = {}
    for run in runs:
        for item in run.inputs:
            if not (item.source or "").startswith(registry.SCHEME):
                continue
            assert item.source is not None
            ref = registry.parse_ref(item.source)
            if ref.version is None:
                continue
            try:
                version = client.store.get_dataset_version(ref.name, ref.version)
            except NotFound:
                raise NotFound(
                    f"dataset version {ref.name}@{ref.version}, used by run {run.run_id}, no "
                    "longer exists (deleted)",
                    hint="its data cannot be restored; the run cannot be reproduced",
                ) from None
            if version.digest != item.digest:
                raise IntegrityError(
                    f"{ref.name}@{ref.version} holds other data than run {run.run_id} used"
                )
            pins[ref.name] = max(pins.get(ref.name, 0), ref.version)
    return pins


def _recorded_environment(client: Client, run: Run, rebuild: bool) -> Environment | None:
    """The run's recorded environment; None when unknown, which ``rebuild`` refuses."""
    digest = run.fingerprint.env_digest if run.fingerprint else ""
    with contextlib.suppress(NotFound):
        return client.get_environment(digest) if digest else None
    if rebuild:
        raise NotFound(
            f"the environment of run {run.run_id} is not in the store: nothing to rebuild",
            hint="run without --rebuild-env to use the current environment",
        )
    return None


# -- code ----------------------------------------------------------------------------------------
def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TriptychError(f"git {args[0]} failed: {e}", hint="is git installed?") from e
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise TriptychError(f"git {' '.join(args[:2])} failed: {' '.join(message[-3:])}")
    return done.stdout.decode(errors="replace").strip()


def _repository(folder: Path, plan: _Plan) -> Path:
    """The git checkout around ``folder``, which must hold the recorded commit."""
    code = plan.run.fingerprint.code if plan.run.fingerprint else None
    where = f" of {code.remote}" if code and code.remote else ""
    try:
        top = Path(_git(folder, "rev-parse", "--show-toplevel"))
    except TriptychError:
        raise InvalidInput(
            f"{folder} is not in a git checkout",
            hint=f"run triptych reproduce inside a clone{where} holding commit {plan.commit[:12]}",
        ) from None
    try:
        _git(top, "cat-file", "-e", f"{plan.commit}^{{commit}}")
    except TriptychError:
        raise NotFound(
            f"commit {plan.commit} of run {plan.run.run_id} is not in the repository at {top}",
            hint=f"fetch it (git fetch --all) or run inside a clone{where} that has it",
        ) from None
    return top


def _remove_worktree(repo: Path, worktree: Path) -> None:
    try:
        _git(repo, "worktree", "remove", "--force", str(worktree))
    except TriptychError:
        shutil.rmtree(worktree, ignore_errors=True)
        with contextlib.suppress(TriptychError):
            _git(repo, "worktree", "prune")


# -- running ---------------------------------------------------------------------------------------
def _child_env(
    client: Client, run: Run, plan: _Plan, worktree: Path, venv: Path | None
) -> dict[str, str]:
    """The environment of the re-run: the same stores (as absolute addresses), the run's
    experiment, the dataset pins, the ``triptych.reproduces`` tag, the worktree's code first."""
    settings = client.settings
    env = dict(os.environ)
    env.pop("TRIPTYCH_HOME", None)
    env["TRIPTYCH_TRACKING_URI"] = _absolute_store_url(settings.tracking_uri)
    env["TRIPTYCH_ARTIFACT_URI"] = _absolute_path(settings.artifact_uri)
    if settings.s3_endpoint_url:
        env["TRIPTYCH_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    env["TRIPTYCH_EXPERIMENT"] = client.get_experiment(run.experiment_id).name
    tags = json.loads(env.get(RUN_TAGS_ENV) or "{}")
    env[RUN_TAGS_ENV] = json.dumps({**tags, REPRODUCES_TAG: run.run_id})
    env[PINS_ENV] = json.dumps(plan.pins)
    # The project's own modules come from the worktree, not from wherever it is installed.
    paths = [str(p) for p in (worktree / "src", worktree) if p.is_dir()]
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    if venv is not None:  # the rebuilt environment
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(bindir(venv)), env.get("PATH", "")])
    return env


def _absolute_store_url(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def _absolute_path(uri: str) -> str:
    if "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def _new_run(client: Client, plan: _Plan, started: int) -> Run:
    """The top-level run tagged ``triptych.reproduces`` since ``started``: of a pipeline run,
    the one of the same pipeline; of a script that starts several, the one with the same name,
    else the same params, else the first."""
    rid = plan.run.run_id
    found = [
        r
        for r in client.search_runs(
            None,
            f"tags.`{REPRODUCES_TAG}` = '{rid}' and start_time >= {started}",
            order_by=["start_time ASC"],
        ).items
        if r.parent_run_id is None
    ]
    if plan.kind == "pipeline":
        name = plan.run.tags.get(PIPELINE_NAME_TAG)
        found = [r for r in found if r.tags.get(PIPELINE_NAME_TAG) == name]
    if not found:
        raise TriptychError(
            f"the re-run of {rid} finished but logged no run",
            hint="the code in the worktree does not start a run as it did (look at its output)",
        )
    for same in (
        lambda r: r.name == plan.run.name,
        lambda r: dict(r.params) == dict(plan.run.params),
    ):
        matching = [r for r in found if same(r)]
        if matching:
            found = matching
    return found[0]


# -- comparing -------------------------------------------------------------------------------------
def compare_metrics(
    original: Mapping[str, float],
    reproduced: Mapping[str, float],
    tolerance: float = 0.0,
    step: str | None = None,
) -> list[MetricComparison]:
    """Every key of either side: the same (NaN equals NaN), within the relative
    ``tolerance``, different, or present on one side only."""
    rows = []
    for key in sorted(set(original) | set(reproduced)):
        a, b = original.get(key), reproduced.get(key)
        if a is None:
            status = "only in reproduction"
        elif b is None:
            status = "only in original"
        elif a == b or (math.isnan(a) and math.isnan(b)):
            status = "same"
        elif abs(a - b) <= tolerance * max(abs(a), abs(b)):
            status = "within tolerance"
        else:
            status = "differs"
        rows.append(MetricComparison(step, key, a, b, status))
    return rows


def _compare(
    client: Client, plan: _Plan, new: Run, recorded: Environment | None, result: Reproduction
) -> None:
    old = plan.run
    result.metrics = compare_metrics(old.metrics, new.metrics, result.tolerance)
    if plan.kind == "pipeline":
        before = {_step(r): r for r in plan.children}
        after = {_step(r): r for r in _children(client, new)}
        for step in sorted(set(before) | set(after)):
            a, b = before.get(step), after.get(step)
            result.metrics += compare_metrics(
                a.metrics if a else {}, b.metrics if b else {}, result.tolerance, step
            )
    if old.fingerprint and new.fingerprint:
        o, n = old.fingerprint, new.fingerprint
        result.fingerprint_same = {
            "code": o.code.digest == n.code.digest,
            "data": o.data_digest == n.data_digest,
            "environment": o.env_digest == n.env_digest,
        }
        result.environment_same = o.env_digest == n.env_digest
        if recorded is not None and not result.environment_same and n.env_digest:
            with contextlib.suppress(NotFound):
                result.package_changes = package_changes(
                    recorded, client.get_environment(n.env_digest)
                )


def _step(run: Run) -> str:
    return run.tags.get(STEP_TAG) or run.name
