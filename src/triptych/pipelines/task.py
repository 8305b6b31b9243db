"""Running one step in its run: the same code for every executor, in any process.

A task carries only addresses and small descriptors: the worker opens the stores itself,
reads its inputs from the artifact store and writes its outputs there, so data never travels
through the driver.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, NotFound
from triptych.store.entities import RunStatus

ERROR_ARTIFACT = "_triptych/error.txt"
LOG_ARTIFACT = "logs.txt"
OUTPUTS_ARTIFACT = "_triptych/outputs.json"


@dataclass
class StepTask:
    """What a worker needs to run one step (plain data: it crosses process boundaries)."""

    tracking_uri: str
    artifact_uri: str
    s3_endpoint_url: str
    pipeline_file: str
    pipeline_attr: str
    pipeline_args: dict[str, Any]
    node: str
    run_id: str
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]  # argument -> Stored.to_dict()
    retries: int = 0
    retry_delay: float = 1.0


@dataclass
class StepResult:
    node: str
    run_id: str
    status: str  # FINISHED or FAILED
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1
    duration: float = 0.0


def find_step(task: StepTask) -> Any:
    """The Step object of ``task.node``: import the pipeline file and trace it again."""
    from triptych.pipelines.pipeline import load

    target = task.pipeline_file + (f":{task.pipeline_attr}" if task.pipeline_attr else "")
    graph = load(target).trace(task.pipeline_args)
    node = graph.nodes.get(task.node)
    if node is None:
        raise NotFound(f"pipeline {target} has no step {task.node!r} any more")
    return node.step


def execute(task: StepTask, step: Any = None, client: Any = None) -> StepResult:
    """Run the step of ``task`` in its (RUNNING) run and end that run FINISHED or FAILED.

    Never raises for a failure of the step itself: the error, with its traceback, is in the
    run (``_triptych/error.txt`` and the ``triptych.error`` tag) and in the result."""
    from triptych.config import resolve
    from triptych.pipelines import logs, values
    from triptych.tracking import fluent
    from triptych.tracking.client import Client

    if client is None:  # in a worker process: the step's own triptych calls use these stores too
        fluent.set_tracking_uri(task.tracking_uri, task.artifact_uri)
        client = Client(
            settings=resolve(
                {
                    "tracking_uri": task.tracking_uri,
                    "artifact_uri": task.artifact_uri,
                    "s3_endpoint_url": task.s3_endpoint_url,
                }
            )
        )
    started = time.perf_counter()
    run = client.store.get_run(task.run_id)
    active = fluent.activate(client, run)
    attempts = 0
    error: str | None = None
    log_text = ""
    outputs: list[dict[str, Any]] = []
    try:
        if step is None:
            step = find_step(task)
        hints = values.hints(step.fn)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="triptych-step-") as tmp:
            while True:
                attempts += 1
                with logs.capture() as buffer:
                    try:
                        kwargs = dict(task.params)
                        for arg, stored in task.inputs.items():
                            s = values.Stored.from_dict(stored)
                            kwargs[arg] = values.load(client, s, hints.get(arg), Path(tmp))
                            if s.kind == "dataset":
                                client.log_input(
                                    task.run_id, f"datasets:/{s.meta['name']}@{s.meta['version']}"
                                )
                        returned = step.fn(**kwargs)
                        got = values.check_returned(
                            step.name, step.outputs, returned, hints.get("return")
                        )
                        outputs = [
                            values.save(active, name, value).to_dict()
                            for name, value in zip(step.outputs, got, strict=True)
                        ]
                        error = None
                    except Exception as e:
                        error = f"{type(e).__name__}: {e}"
                        print(traceback.format_exc(), end="")
                log_text += buffer.getvalue()
                if error is None or attempts > task.retries:
                    break
                log_text += f"-- attempt {attempts} failed ({error}); retrying\n"
                time.sleep(task.retry_delay)
    except Exception as e:  # the step could not even be found or set up
        error = f"{type(e).__name__}: {e}"
        log_text += traceback.format_exc()
    duration = time.perf_counter() - started
    try:
        if log_text:
            client.log_text(task.run_id, log_text, LOG_ARTIFACT)
        tags = {"triptych.step.attempts": attempts, "triptych.step.duration": f"{duration:.3f}"}
        if error is not None:
            client.log_text(task.run_id, log_text or error, ERROR_ARTIFACT)
            tags["triptych.error"] = error.splitlines()[0][:500] if error else ""
        else:
            client.log_dict(task.run_id, {"outputs": outputs}, OUTPUTS_ARTIFACT)
        active.set_tags(tags)
        active.end(RunStatus.FAILED if error else RunStatus.FINISHED, reason=error)
    except Exception:
        active.end(RunStatus.FAILED, reason="could not record the step's results")
        raise
    return StepResult(
        task.node,
        task.run_id,
        "FAILED" if error else "FINISHED",
        outputs if error is None else [],
        error,
        attempts,
        duration,
    )


def check_outputs_exist(client: Any, outputs: list[dict[str, Any]]) -> bool:
    """Whether every blob of these outputs is still in the artifact store."""
    try:
        return all(client.artifacts.exists(e["digest"]) for o in outputs for e in o["entries"])
    except (KeyError, TypeError):
        raise InvalidInput("a recorded step output is malformed") from None
