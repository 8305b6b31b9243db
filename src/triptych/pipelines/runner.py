"""Running a pipeline: a run, with a nested run per step, cached and resumable.

The driver decides, step by step in graph order, whether a step's results can be reused (the
cache, or the finished steps of an interrupted earlier run) or must be computed; computed
steps go to the executor, several at once when they do not depend on each other. A failed
step fails the pipeline after the steps already running have finished; steps that do not
depend on it still run, so a re-run has less left to do.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, StepFailed
from triptych.pipelines import cache as cache_module
from triptych.pipelines import params as params_module
from triptych.pipelines import values
from triptych.pipelines.pipeline import Pipeline, Plan, load
from triptych.pipelines.task import OUTPUTS_ARTIFACT, StepResult, StepTask, check_outputs_exist
from triptych.store.entities import ArtifactEntry, Run, RunStatus

PIPELINE_ARTIFACT = "_triptych/pipeline.json"
TAG_PIPELINE = "triptych.pipeline.name"
TAG_FILE = "triptych.pipeline.file"
TAG_EXECUTOR = "triptych.pipeline.executor"
TAG_STEP = "triptych.step.name"
TAG_KEY = "triptych.step.cache_key"
TAG_CACHE = "triptych.step.cache"  # hit, miss, resumed, off
TAG_FROM = "triptych.step.cached_from"
TAG_LOCK = "triptych.pipeline.lock"  # digest of what the graph and keys derive from
TAG_PARENT = "triptych.pipeline.run"  # on step runs: the pipeline run they belong to


@dataclass
class StepState:
    """Where one step of a pipeline run stands."""

    name: str
    status: str = "pending"  # pending, running, finished, failed, skipped
    cache: str = ""  # hit, miss, resumed, off
    run_id: str | None = None
    key: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "cache": self.cache,
            "run_id": self.run_id,
            "cache_key": self.key,
            "duration": round(self.duration, 4),
            "attempts": self.attempts,
            "error": self.error,
            "outputs": {
                o["name"]: {"kind": o["kind"], "digest": o["digest"]} for o in self.outputs
            },
        }


@dataclass
class PipelineResult:
    """A finished pipeline run: its run id, status and each step's state."""

    run_id: str
    name: str
    status: str
    steps: dict[str, StepState]
    duration: float
    client: Any = field(repr=False, default=None)

    def output(self, step: str, name: str | None = None) -> Any:
        """Load an output of a step (its only one, or ``name``)."""
        state = self.steps[step]
        found = [o for o in state.outputs if name is None or o["name"] == name]
        if not found or (name is None and len(found) > 1):
            raise InvalidInput(
                f"step {step!r} has outputs {', '.join(o['name'] for o in state.outputs)}",
                hint="name the one you want",
            )
        return values.load(self.client, values.Stored.from_dict(found[0]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.name,
            "status": self.status,
            "duration": round(self.duration, 4),
            "steps": [s.to_dict() for s in self.steps.values()],
        }


def project_root(path: Path) -> Path:
    """The git checkout holding ``path``, else its folder: what 'project code' means."""
    for folder in (path.parent, *path.parent.parents):
        if (folder / ".git").exists():
            return folder
    return path.parent


def run(
    target: Pipeline | str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    params_file: Path | None = None,
    executor: str | None = "local",
    cache: bool = True,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    workers: int | None = None,
    client: Any = None,
    on_step: Callable[[StepState], None] | None = None,
) -> PipelineResult:
    """Run a pipeline (an object, or a file as for ``triptych pipeline run``).

    ``params`` overrides ``params.yaml`` (``{"train.alpha": 2}``); ``cache=False`` computes
    every step; ``on_step`` is called whenever a step starts or ends. Raises
    :class:`~triptych.errors.StepFailed` (carrying ``.result``) when a step fails."""
    from triptych.pipelines import executors, replay
    from triptych.tracking import fingerprint, fluent

    c = client or fluent._client()
    lock = None
    if isinstance(target, (str, Path)):
        text = str(target)
        function = ""
        if ":" in text and not Path(text).exists():
            text, _, function = text.rpartition(":")
        path = Path(text).resolve()
        if path.is_file():
            lock = cache_module.pipeline_lock(
                path,
                project_root(path),
                function=function,
                params_file=params_file or path.parent / params_module.PARAMS_FILE,
                overrides=params or {},
                env=fingerprint.environment().digest,
            )
            if cache:  # unchanged since a finished run: reuse it without importing the file
                found = replay.replay(
                    c, lock, path, project_root(path), executor, experiment, tags, on_step
                )
                if found is not None:
                    return found
    pipe = load(target) if isinstance(target, (str, Path)) else target
    plan = pipe.plan(params, params_file)
    file = pipe.file
    root = project_root(file) if file else Path.cwd()
    driver = _Driver(plan, c, root, cache, on_step, lock)
    pool = executors.create(executor, workers=workers, project_root=root)
    try:
        return driver.run(pool, experiment, tags)
    finally:
        pool.close()


class _Driver:
    def __init__(
        self,
        plan: Plan,
        client: Any,
        root: Path,
        use_cache: bool,
        on_step: Callable[[StepState], None] | None,
        lock: str | None = None,
    ) -> None:
        from triptych.tracking import fingerprint

        self.lock = lock
        self.plan = plan
        self.client = client
        self.root = root
        self.use_cache = use_cache
        self.on_step = on_step or (lambda state: None)
        self.env = fingerprint.environment().digest
        self.states = {n.name: StepState(n.name) for n in plan.graph}
        self._previous: dict[str, Run] | None = None

    # -- the run ----------------------------------------------------------------------------
    def run(
        self, pool: Any, experiment: str | None, tags: Mapping[str, Any] | None
    ) -> PipelineResult:
        from triptych.tracking import fluent

        plan, c = self.plan, self.client
        file = plan.pipeline.file
        rel = os.path.relpath(file, self.root) if file else ""
        self.exp_id = c.store.get_or_create_experiment(
            experiment or plan.pipeline.name
        ).experiment_id
        self.pool_name = pool.name
        self._find_previous()
        parent = fluent.active_run()
        info = c.create_run(
            self.exp_id,
            name=f"{plan.pipeline.name}-{fluent._run_name()}",
            tags={
                TAG_PIPELINE: plan.pipeline.name,
                TAG_FILE: rel,
                TAG_EXECUTOR: pool.name,
                **({TAG_LOCK: self.lock} if self.lock else {}),
                **{k: str(v) for k, v in (tags or {}).items()},
            },
            params=params_module.flatten(plan.params),
            parent_run_id=parent.run_id if parent else None,
        )
        self.run_id = info.run_id
        active = fluent.activate(c, info)
        c.log_dict(
            self.run_id,
            {
                "name": plan.pipeline.name,
                "file": rel,
                "function": _attr_of(plan.pipeline),  # FILE:function names it exactly
                "params": plan.params,
                "executor": pool.name,
                # a graph the pipeline function may shape from files, env or clock is traced
                # every time; a static one can be replayed from the lock
                "dynamic": plan.pipeline.dynamic_reason(),
                **plan.graph.to_dict(),
            },
            PIPELINE_ARTIFACT,
        )
        started = time.perf_counter()
        try:
            self._loop(pool, file)
        except BaseException:
            for state in self.states.values():
                if state.status == "running" and state.run_id:
                    c.set_terminated(state.run_id, RunStatus.KILLED)
            active.end(RunStatus.KILLED, reason="interrupted")
            raise
        failed = [s for s in self.states.values() if s.status == "failed"]
        hits = sum(1 for s in self.states.values() if s.cache in ("hit", "resumed"))
        active.set_tags(
            {"triptych.pipeline.steps": len(self.states), "triptych.pipeline.reused": hits}
        )
        status = "FAILED" if failed else "FINISHED"
        reason = f"step {failed[0].name!r} failed: {failed[0].error}" if failed else None
        active.end(RunStatus(status), reason=reason)
        result = PipelineResult(
            self.run_id, plan.pipeline.name, status, self.states, time.perf_counter() - started, c
        )
        if failed:
            raise StepFailed(
                f"{reason} (step run {failed[0].run_id})",
                hint=f"see its log: triptych runs show {failed[0].run_id}; fix it and run the "
                "pipeline again: finished steps are reused",
                result=result,
            )
        return result

    def _loop(self, pool: Any, file: Path | None) -> None:
        graph = self.plan.graph
        running: dict[Future[StepResult], str] = {}
        while True:
            for node in graph:
                state = self.states[node.name]
                if state.status != "pending":
                    continue
                ups = [self.states[u] for u in node.upstream]
                if any(u.status in ("failed", "skipped") for u in ups):
                    state.status = "skipped"
                    self.on_step(state)
                    continue
                if any(u.status != "finished" for u in ups):
                    continue
                future = self._start(node, pool, file)
                if future is not None:
                    running[future] = node.name
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                self._finish(self.states[name], future)

    # -- one step ---------------------------------------------------------------------------
    def _start(self, node: Any, pool: Any, file: Path | None) -> Future[StepResult] | None:
        state = self.states[node.name]
        params = self.plan.step_params(node.name)
        inputs: dict[str, dict[str, Any]] = {}
        for arg, out in node.inputs.items():
            produced = [o for o in self.states[out.node].outputs if o["name"] == out.name]
            inputs[arg] = produced[0]
        state.key = cache_module.cache_key(
            code=cache_module.code_digest(node.step, self.root),
            params=params,
            inputs={a: s["digest"] for a, s in inputs.items()},
            env=self.env,
            outputs=node.step.outputs,
        )
        base_tags = {TAG_STEP: node.name, TAG_KEY: state.key, TAG_PARENT: self.run_id}
        if self.use_cache:
            reused = self._reuse(node, state, base_tags)
            if reused:
                return None
        state.cache = "miss" if (self.use_cache and node.step.cache) else "off"
        info = self.client.create_run(
            self.exp_id,
            name=node.name,
            tags={**base_tags, TAG_CACHE: state.cache},
            params={
                k: params_module.canonical(v) if not isinstance(v, str) else v
                for k, v in params.items()
            },
            parent_run_id=self.run_id,
        )
        state.run_id = info.run_id
        state.status = "running"
        self.on_step(state)
        settings = self.client.settings
        task = StepTask(
            tracking_uri=settings.tracking_uri,
            artifact_uri=settings.artifact_uri,
            s3_endpoint_url=settings.s3_endpoint_url,
            pipeline_file=str(file) if file else "",
            pipeline_attr=_attr_of(self.plan.pipeline),
            pipeline_args=dict(self.plan.params.get(self.plan.pipeline.name, {})),
            node=node.name,
            run_id=info.run_id,
            params=dict(params),
            inputs=inputs,
            retries=node.step.retries,
            retry_delay=node.step.retry_delay,
        )
        return pool.submit(task, node.step, self.client)

    def _finish(self, state: StepState, future: Future[StepResult]) -> None:
        try:
            result = future.result()
        except Exception as e:  # the worker itself died (e.g. a Ray node lost)
            state.status, state.error = "failed", f"{type(e).__name__}: {e}"
            if state.run_id:
                self.client.set_tag(state.run_id, "triptych.error", state.error[:500])
                self.client.set_terminated(state.run_id, RunStatus.FAILED)
            self.on_step(state)
            return
        state.duration, state.attempts = result.duration, result.attempts
        if result.status == "FINISHED":
            state.status, state.outputs = "finished", result.outputs
            record_datasets(self.client, self.run_id, result.outputs)
        else:
            state.status, state.error = "failed", result.error
        self.on_step(state)

    # -- reuse ------------------------------------------------------------------------------
    def _reuse(self, node: Any, state: StepState, base_tags: dict[str, str]) -> bool:
        """Reuse a finished run of this step with the same key: a cache hit, or (for a
        ``cache=False`` step) a step the interrupted previous run of this pipeline finished."""
        source: Run | None = None
        kind = "hit"
        if node.step.cache:
            source = self._cached(state.key)
        if source is None:
            source = (self._previous or {}).get(state.key or "")
            kind = "resumed"
        if source is None:
            return False
        found = reuse_entries(self.client, source)
        if found is None:
            return False
        outputs, artifacts = found
        origin = source.tags.get(TAG_FROM) or source.run_id
        info = record_reuse(
            self.client,
            self.exp_id,
            self.run_id,
            node.name,
            {**base_tags, TAG_CACHE: kind, TAG_FROM: origin},
            source,
            artifacts,
        )
        state.run_id, state.outputs, state.cache, state.status = info, outputs, kind, "finished"
        record_datasets(self.client, self.run_id, outputs)
        self.on_step(state)
        return True

    def _cached(self, key: str | None) -> Run | None:
        page = self.client.store.search_runs(
            [self.exp_id],
            f"tags.`{TAG_KEY}` = '{key}' and status = 'FINISHED'",
            order_by=["start_time DESC"],
            max_results=1,
        )
        return page.items[0] if page.items else None

    def _find_previous(self) -> None:
        """Finished steps of the last run of this pipeline, if that run did not finish."""
        name = self.plan.pipeline.name
        page = self.client.store.search_runs(
            [self.exp_id],
            f"tags.`{TAG_PIPELINE}` = '{name}'",
            order_by=["start_time DESC"],
            max_results=1,
        )
        self._previous = {}
        if not page.items or page.items[0].status == RunStatus.FINISHED:
            return
        last = page.items[0]
        children = self.client.store.search_runs(
            [self.exp_id],
            f"tags.`{TAG_PARENT}` = '{last.run_id}' and status = 'FINISHED'",
            max_results=1000,
        )
        for child in children.items:
            if TAG_KEY in child.tags:
                self._previous.setdefault(child.tags[TAG_KEY], child)


def record_datasets(client: Any, run_id: str, outputs: list[dict[str, Any]]) -> None:
    """Dataset versions a step produced are inputs of the pipeline run: its data leg."""
    for o in outputs:
        if o["kind"] == "dataset":
            client.log_input(run_id, f"datasets:/{o['meta']['name']}@{o['meta']['version']}")


def record_reuse(
    client: Any,
    exp_id: str,
    parent_id: str,
    name: str,
    tags: dict[str, str],
    source: Run,
    artifacts: tuple[ArtifactEntry, ...],
) -> str:
    """A finished step run that reuses ``source``'s outputs (and shows its metrics)."""
    from triptych.store.base import now_ms
    from triptych.store.entities import Metric, RunSpec

    fingerprint = source.fingerprint
    info = client.store.create_run(
        RunSpec(
            experiment_id=exp_id,
            name=name,
            parent_run_id=parent_id,
            tags=tags,
            params=dict(source.params),
            code=fingerprint.code if fingerprint else None,
            env_digest=fingerprint.env_digest if fingerprint else None,
            fingerprint=fingerprint.digest if fingerprint else None,
            artifacts=artifacts,
        )
    )
    t = now_ms()
    metrics = [Metric(k, v, 0, t) for k, v in source.metrics.items()]
    if metrics:
        client.store.log_batch(info.run_id, metrics, {}, {})
    client.set_terminated(info.run_id, RunStatus.FINISHED)
    return str(info.run_id)


def reuse_entries(
    client: Any, source: Run
) -> tuple[list[dict[str, Any]], tuple[ArtifactEntry, ...]] | None:
    """The outputs a finished step run recorded and the artifact entries a run reusing them
    gets; None when they cannot be reused (not recorded, or a blob is gone)."""
    try:
        recorded = json.loads(client.read_artifact(source.run_id, OUTPUTS_ARTIFACT))
    except Exception:
        return None
    outputs = recorded.get("outputs", [])
    if not check_outputs_exist(client, outputs):
        return None  # deleted since: compute again
    entries: dict[str, ArtifactEntry] = {}
    for o in outputs:
        for e in values.Stored.from_dict(o).artifact_entries():
            entries[e.path] = e
    for e in client.store.walk_artifacts(source.run_id, OUTPUTS_ARTIFACT):
        entries[e.path] = e
    return outputs, tuple(entries.values())


def _attr_of(pipe: Pipeline) -> str:
    """The module attribute holding ``pipe``, so a worker finds it in the file."""
    import sys

    module = sys.modules.get(pipe.fn.__module__)
    for key, value in vars(module).items() if module else ():
        if value is pipe:
            return str(key)
    return ""
