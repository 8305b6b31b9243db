"""Replaying an unchanged pipeline without importing it.

Importing a pipeline file costs its imports (pandas, scikit-learn…: seconds), while deciding
that nothing changed costs milliseconds. A run records a *lock*: the digest of the pipeline
file, the project files it imports (read statically), its params file, the overrides and the
environment. When a finished run with the same lock exists, its graph was static (not shaped
by files, the environment, the clock or randomness), all its steps are cacheable and their
outputs are all still stored, every step's cache key is necessarily the same as then: the run
is recorded as all cache hits of it, as the full path would have, without importing anything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from triptych.pipelines import runner
from triptych.store.entities import Run, RunStatus


def replay(
    client: Any,
    lock: str,
    file: Path,
    root: Path,
    executor: str | None,
    experiment: str | None,
    tags: Mapping[str, Any] | None,
    on_step: Callable[[runner.StepState], None] | None,
) -> runner.PipelineResult | None:
    """Record a new run of the pipeline as hits of the last finished run with ``lock``, or
    return None when that is not possible (then the pipeline is run normally)."""
    started = time.perf_counter()
    store = client.store
    if experiment is not None:
        found = store.get_experiment_by_name(experiment)
        if found is None:
            return None
        experiments = [found.experiment_id]
    else:
        experiments = [e.experiment_id for e in store.list_experiments()]
    page = store.search_runs(
        experiments,
        f"tags.`{runner.TAG_LOCK}` = '{lock}' and status = 'FINISHED'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    if not page.items:
        return None
    source = page.items[0]
    try:
        recorded = json.loads(client.read_artifact(source.run_id, runner.PIPELINE_ARTIFACT))
    except Exception:
        return None
    steps = recorded.get("steps", [])
    if recorded.get("dynamic") or not steps or not all(s.get("cache", False) for s in steps):
        return None
    children = store.search_runs(
        [source.experiment_id],
        f"tags.`{runner.TAG_PARENT}` = '{source.run_id}' and status = 'FINISHED'",
        max_results=10_000,
    )
    by_name: dict[str, Run] = {r.tags.get(runner.TAG_STEP, ""): r for r in children.items}
    reusable: dict[str, tuple[Run, list[dict[str, Any]], Any]] = {}
    for s in steps:
        step_run = by_name.get(s["name"])
        found_entries = runner.reuse_entries(client, step_run) if step_run else None
        if step_run is None or found_entries is None:
            return None
        reusable[s["name"]] = (step_run, *found_entries)
    return _record(client, source, recorded, reusable, file, root, executor, tags, on_step, started)


def _record(
    client: Any,
    source: Run,
    recorded: dict[str, Any],
    reusable: dict[str, tuple[Run, list[dict[str, Any]], Any]],
    file: Path,
    root: Path,
    executor: str | None,
    tags: Mapping[str, Any] | None,
    on_step: Callable[[runner.StepState], None] | None,
    started: float,
) -> runner.PipelineResult:
    from triptych.pipelines import params as params_module
    from triptych.tracking import fluent

    name = recorded["name"]
    parent = fluent.active_run()
    info = client.create_run(
        source.experiment_id,
        name=f"{name}-{fluent._run_name()}",
        tags={
            runner.TAG_PIPELINE: name,
            runner.TAG_FILE: os.path.relpath(file, root),
            runner.TAG_EXECUTOR: executor or "local",
            runner.TAG_LOCK: source.tags[runner.TAG_LOCK],
            "triptych.pipeline.replayed_from": source.run_id,
            **{k: str(v) for k, v in (tags or {}).items()},
        },
        params=params_module.flatten(recorded.get("params", {})),
        parent_run_id=parent.run_id if parent else None,
    )
    active = fluent.activate(client, info)
    try:
        client.log_dict(
            info.run_id, {**recorded, "executor": executor or "local"}, runner.PIPELINE_ARTIFACT
        )
        states: dict[str, runner.StepState] = {}
        for s in recorded["steps"]:
            step_run, outputs, artifacts = reusable[s["name"]]
            origin = step_run.tags.get(runner.TAG_FROM) or step_run.run_id
            step_tags = {
                runner.TAG_STEP: s["name"],
                runner.TAG_KEY: step_run.tags.get(runner.TAG_KEY, ""),
                runner.TAG_PARENT: info.run_id,
                runner.TAG_CACHE: "hit",
                runner.TAG_FROM: origin,
            }
            run_id = runner.record_reuse(
                client, source.experiment_id, info.run_id, s["name"], step_tags, step_run, artifacts
            )
            runner.record_datasets(client, info.run_id, outputs)
            state = runner.StepState(
                s["name"], "finished", "hit", run_id, step_tags[runner.TAG_KEY], outputs
            )
            states[s["name"]] = state
            if on_step is not None:
                on_step(state)
        active.set_tags(
            {"triptych.pipeline.steps": len(states), "triptych.pipeline.reused": len(states)}
        )
    except BaseException:
        active.end(RunStatus.KILLED, reason="interrupted")
        raise
    active.end(RunStatus.FINISHED)
    return runner.PipelineResult(
        info.run_id, name, "FINISHED", states, time.perf_counter() - started, client
    )
