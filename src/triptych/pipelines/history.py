"""Reading pipeline runs back: the last run of a pipeline, its steps, the pipelines known."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from triptych.errors import NotFound
from triptych.pipelines.runner import (
    PIPELINE_ARTIFACT,
    TAG_CACHE,
    TAG_PARENT,
    TAG_PIPELINE,
    TAG_STEP,
)
from triptych.store.entities import Run


@dataclass
class PipelineView:
    """A pipeline's graph and, when it ran, its last run and that run's step runs by name."""

    name: str
    graph: dict[str, Any]  # Graph.to_dict()
    run: Run | None
    steps: dict[str, Run]

    def step_status(self, name: str) -> tuple[str, str]:
        """``(status, cache)`` of a step in the last run (``("-", "")`` if it did not run)."""
        found = self.steps.get(name)
        if found is None:
            return ("not run" if self.run else "-", "")
        return found.status.value, found.tags.get(TAG_CACHE, "")


def _experiments(client: Any) -> list[str]:
    return [e.experiment_id for e in client.store.list_experiments()]


def last_run(client: Any, name: str) -> Run | None:
    """The newest run of the pipeline ``name``, in any experiment."""
    page = client.store.search_runs(
        _experiments(client),
        f"tags.`{TAG_PIPELINE}` = '{name}'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return page.items[0] if page.items else None


def step_runs(client: Any, run: Run) -> dict[str, Run]:
    """The step runs of a pipeline run, by step name."""
    page = client.store.search_runs(
        [run.experiment_id], f"tags.`{TAG_PARENT}` = '{run.run_id}'", max_results=10_000
    )
    return {r.tags[TAG_STEP]: r for r in page.items if TAG_STEP in r.tags}


def view(client: Any, target: str, params: dict[str, Any] | None = None) -> PipelineView:
    """A pipeline file (traced now) or the name of a pipeline that ran (its recorded graph)."""
    from pathlib import Path

    text = target.rpartition(":")[0] if ":" in target and not Path(target).exists() else target
    if text.endswith(".py") or Path(text).is_file():
        from triptych.pipelines.pipeline import load

        pipe = load(target)
        graph = pipe.plan(params).graph.to_dict()
        run = last_run(client, pipe.name)
        return PipelineView(pipe.name, graph, run, step_runs(client, run) if run else {})
    run = last_run(client, target)
    if run is None:
        raise NotFound(
            f"no pipeline {target!r} has run",
            hint="give the pipeline's .py file, or see: triptych pipeline list",
        )
    recorded = json.loads(client.read_artifact(run.run_id, PIPELINE_ARTIFACT))
    return PipelineView(target, recorded, run, step_runs(client, run))


def known(client: Any) -> list[Run]:
    """The last run of every pipeline that ran, newest first."""
    page = client.store.search_runs(
        _experiments(client),
        f"tags.`{TAG_PIPELINE}` != ''",
        order_by=["start_time DESC"],
        max_results=10_000,
    )
    latest: dict[str, Run] = {}
    for r in page.items:
        latest.setdefault(r.tags[TAG_PIPELINE], r)
    return list(latest.values())
