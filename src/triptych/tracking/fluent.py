"""The fluent API: ``with triptych.start_run(): triptych.log_metric(...)``.

Each thread (and asyncio task) has its own stack of active runs. Metrics, params and tags go
through the background writer (no database round trip per call); artifacts are written at
once. A run ends FINISHED, FAILED on an exception, KILLED on Ctrl-C; runs still open at
interpreter exit are ended the same way, and a run whose process dies is failed by the
heartbeat timeout.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import random
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from triptych.errors import Conflict, InvalidInput, NotFound, TriptychError
from triptych.store import base
from triptych.store.base import now_ms
from triptych.store.entities import ArtifactEntry, DataInput, Metric, Run, RunStatus
from triptych.tracking.client import Client

_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "triptych_runs", default=()
)
_open_runs: dict[str, ActiveRun] = {}
_open_lock = threading.Lock()
_exit_status: RunStatus | None = None
_hooks_installed = False


class ActiveRun:
    """A run this process is logging to; a context manager that ends it."""

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.info = run
        self._params: dict[str, str] = dict(run.params)
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun({self.run_id!r}, name={self.info.name!r})"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED, reason="interrupted (Ctrl-C)")
        else:
            self.end(RunStatus.FAILED, reason=f"{exc_type.__name__}: {exc}")

    # -- logging ----------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        metric = base.validate_metric(Metric(key, value, step, now_ms()))
        self.client.writer.add_metric(self.run_id, metric)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        t = now_ms()
        checked = [base.validate_metric(Metric(k, v, step, t)) for k, v in metrics.items()]
        self.client.writer.add(self.run_id, metrics=checked)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: logging a different value for a key raises Conflict now."""
        checked: dict[str, str] = {}
        for key, value in params.items():
            base.validate_key("param", key)
            text = base.validate_value("param", key, value, base.MAX_PARAM_LENGTH)
            old = self._params.get(key)
            if old is not None and old != text:
                raise Conflict(
                    f"param {key!r} is already {old!r}; cannot change it to {text!r}",
                    hint="params are immutable: start a new run, or use a metric or tag",
                )
            checked[key] = text
        self._params.update(checked)
        self.client.writer.add(self.run_id, params=checked)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.writer.add(self.run_id, tags=base.validate_tags(tags))

    def log_artifact(
        self, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        return self.client.log_artifact(self.run_id, local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        return self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> ArtifactEntry:
        return self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        return self.client.log_dict(self.run_id, data, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> ArtifactEntry:
        return self.client.log_figure(self.run_id, figure, artifact_file)

    def log_input(self, data: Any, name: str | None = None) -> DataInput:
        return self.client.log_input(self.run_id, data, name)

    def flush(self) -> None:
        """Write buffered values now; raises an error any of them met (e.g. a deleted run)."""
        self.client.writer.flush(self.run_id)

    # -- ending -----------------------------------------------------------------------------
    def end(self, status: RunStatus | str = RunStatus.FINISHED, reason: str | None = None) -> None:
        """Write what is buffered and mark the run ``status``. Ending twice is a no-op."""
        if self._ended:
            return
        status = RunStatus(status)
        self._ended = True
        _pop(self)
        tags = {"triptych.status_reason": reason[:2000]} if reason else None
        self.client.writer.finish(self.run_id, status, tags)


def _pop(run: ActiveRun) -> None:
    _stack.set(tuple(r for r in _stack.get() if r is not run))
    with _open_lock:
        _open_runs.pop(run.run_id, None)


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _exit_status
        _exit_status = (
            RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        )
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    """At exit: end runs left open (FINISHED, or FAILED/KILLED after an uncaught error) and
    flush every writer, so nothing logged before a normal exit is lost."""
    from triptych.tracking import client as client_module

    with _open_lock:
        runs = list(_open_runs.values())
    status = _exit_status or RunStatus.FINISHED
    for run in reversed(runs):
        try:
            run.end(status, reason="process exited" if status is not RunStatus.FINISHED else None)
        except TriptychError as e:
            print(f"triptych: could not end run {run.run_id}: {e}", file=sys.stderr)
    for writer in list(client_module._writers.values()):
        writer.close()


# -- module-level functions ---------------------------------------------------------------------
_default_client: Client | None = None
_client_lock = threading.Lock()


def _client() -> Client:
    global _default_client
    with _client_lock:
        if _default_client is None:
            _default_client = Client()
        return _default_client


def set_tracking_uri(uri: str | None, artifact_uri: str | None = None) -> None:
    """Point the fluent API at other stores (None: back to the resolved settings)."""
    global _default_client
    with _client_lock:
        _default_client = Client(uri, artifact_uri)


_ADJECTIVES = [
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "glad",
    "happy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "merry",
    "nimble",
    "plucky",
    "quiet",
    "rapid",
    "shiny",
    "silent",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "witty",
]
_NOUNS = [
    "badger",
    "bee",
    "crane",
    "deer",
    "dolphin",
    "eagle",
    "falcon",
    "finch",
    "fox",
    "gecko",
    "hare",
    "heron",
    "ibis",
    "koala",
    "lark",
    "lemur",
    "lynx",
    "marten",
    "newt",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "seal",
    "swan",
    "tapir",
    "wren",
]


def _run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    nested: bool = False,
    *,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> ActiveRun:
    """Start (or, with ``run_id``, resume) a run and make it the active one.

    ``experiment`` is a name (created if needed) or id; default: ``$TRIPTYCH_EXPERIMENT`` or
    "Default". ``nested=True`` starts a child of the active run."""
    parent = active_run()
    if parent is not None and not nested:
        raise Conflict(
            f"run {parent.run_id} is already active",
            hint="end it first, or pass nested=True to start a child run",
        )
    client = _client()
    if run_id is not None:
        info = client.get_run(run_id)
        client.store.update_run(run_id, status=RunStatus.RUNNING)
    else:
        exp_name = experiment or os.environ.get("TRIPTYCH_EXPERIMENT") or base.DEFAULT_EXPERIMENT
        if parent is None:
            tags = {**_env_tags(), **(tags or {})}
        if parent is not None and experiment is None:
            exp_id = parent.info.experiment_id
        else:
            exp_id = _experiment_id(client, exp_name)
        try:
            info = client.create_run(
                exp_id,
                name=name or _run_name(),
                tags=tags,
                parent_run_id=parent.run_id if parent else None,
            )
        except (NotFound, Conflict):
            _experiment_cache.clear()  # deleted or renamed since it was cached: look again
            info = client.create_run(
                _experiment_id(client, exp_name)
                if not (parent and experiment is None)
                else parent.info.experiment_id,
                name=name or _run_name(),
                tags=tags,
                parent_run_id=parent.run_id if parent else None,
            )
    run = ActiveRun(client, info)
    _install_exit_hooks()
    client.writer.watch(run.run_id)
    _stack.set((*_stack.get(), run))
    with _open_lock:
        _open_runs[run.run_id] = run
    return run


RUN_TAGS_ENV = "TRIPTYCH_RUN_TAGS"
_env_tags_cache: tuple[str, dict[str, str]] = ("", {})


def _env_tags() -> dict[str, str]:
    """Tags for every top-level run from ``$TRIPTYCH_RUN_TAGS`` (a JSON object), e.g. the
    ``triptych.reproduces`` tag ``triptych reproduce`` gives the run it starts.

    Parsed once per value of the variable."""
    global _env_tags_cache
    raw = os.environ.get(RUN_TAGS_ENV, "")
    if not raw:
        return {}
    if raw == _env_tags_cache[0]:
        return _env_tags_cache[1]
    import json

    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            f"{RUN_TAGS_ENV} must be a JSON object, got {raw[:100]!r}",
            hint=f"""e.g. {RUN_TAGS_ENV}='{{"team": "ds"}}', or unset it""",
        )
    tags = base.validate_tags(parsed)
    _env_tags_cache = (raw, tags)
    return tags


_experiment_cache: dict[tuple[str, str], str] = {}


def _experiment_id(client: Client, name_or_id: str) -> str:
    """Experiment id for a name (created if needed) or an id, remembered per process.

    Safe to cache: ``create_run`` itself refuses a deleted or missing experiment."""
    key = (client.settings.tracking_uri, name_or_id)
    cached = _experiment_cache.get(key)
    if cached is not None:
        return cached
    found_id = _lookup_experiment(client, name_or_id)
    _experiment_cache[key] = found_id
    return found_id


def _lookup_experiment(client: Client, name_or_id: str) -> str:
    found = client.store.get_experiment_by_name(name_or_id)
    if found is None and name_or_id.isdigit():
        return client.store.get_experiment(name_or_id).experiment_id
    if found is not None:
        if found.lifecycle.value == "deleted":
            raise Conflict(
                f"experiment {name_or_id!r} is deleted",
                hint="restore it with Client().restore_experiment(), or use another name",
            )
        return found.experiment_id
    return client.store.get_or_create_experiment(name_or_id).experiment_id


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, or None."""
    stack = _stack.get()
    return stack[-1] if stack else None


def _current() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidInput("no active run", hint="wrap the code in: with triptych.start_run(): ...")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op when there is none)."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_param(key: str, value: Any) -> None:
    _current().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _current().log_params(params)


def log_metric(key: str, value: float, step: int = 0) -> None:
    _current().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    _current().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactEntry:
    return _current().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactEntry]:
    return _current().log_artifacts(local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactEntry:
    return _current().log_text(text, artifact_file)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
    return _current().log_dict(data, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactEntry:
    return _current().log_figure(figure, artifact_file)


def log_input(data: Any, name: str | None = None) -> DataInput:
    return _current().log_input(data, name)


def flush() -> None:
    """Write everything buffered by this process now."""
    _client().writer.flush()


def activate(client: Client, run: Run) -> ActiveRun:
    """Make the existing RUNNING ``run`` the active one of this thread (or task), as is.

    The pipeline runner uses it so a step's own ``triptych.log_metric`` calls land in its
    step run; end it with ``.end(status)`` (this does not change the status)."""
    active = ActiveRun(client, run)
    _install_exit_hooks()
    client.writer.watch(run.run_id)
    _stack.set((*_stack.get(), active))
    with _open_lock:
        _open_runs[run.run_id] = active
    return active
