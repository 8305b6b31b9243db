"""Executors run step tasks: ``local`` threads in this process, or ``ray`` tasks.

Both run :func:`triptych.pipelines.task.execute`, so they give the same results; Ray workers
open the stores from the task's addresses and move data through the artifact store.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from triptych.errors import InvalidInput, MissingDependency
from triptych.pipelines.task import StepResult, StepTask, execute


class Executor(Protocol):
    name: str

    def submit(self, task: StepTask, step: Any, client: Any) -> Future[StepResult]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Independent steps in parallel threads of this process (sharing its stores)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or min(8, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="triptych-step")

    def submit(self, task: StepTask, step: Any, client: Any) -> Future[StepResult]:
        return self._pool.submit(execute, task, step, client)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _run_task(task: StepTask) -> StepResult:
    return execute(task)


class RayExecutor:
    """Each step a Ray task asking for the step's ``num_cpus``.

    ``address``: None starts (or joins, with ``$RAY_ADDRESS``) a runtime on this machine;
    ``ray://host:port`` connects to a cluster and ships the project folder as the working
    directory (the stores must then be ones the cluster reaches: PostgreSQL and S3)."""

    name = "ray"

    def __init__(self, address: str | None = None, project_root: Path | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise MissingDependency(
                "the ray executor needs Ray", hint="pip install 'triptych[ray]'"
            ) from None
        self._ray = ray
        self.remote_root: str | None = None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address and address.startswith("ray://"):
                kwargs["runtime_env"] = {"working_dir": str(project_root or Path.cwd())}
                self.remote_root = str(project_root or Path.cwd())
            elif not address:
                kwargs["include_dashboard"] = False  # a private runtime: start fast
            ray.init(address=address, **kwargs)
        self._remote = ray.remote(_run_task)

    def submit(self, task: StepTask, step: Any, client: Any) -> Future[StepResult]:
        if self.remote_root is not None:
            # on the cluster the project is the working directory: paths relative to it
            task.pipeline_file = os.path.relpath(task.pipeline_file, self.remote_root)
        ref = self._remote.options(num_cpus=step.num_cpus, max_retries=0).remote(task)
        future: Future[StepResult] = ref.future()
        return future

    def close(self) -> None:
        """Leave the runtime up: a later pipeline in this process reuses it."""


def create(
    spec: str | None, *, workers: int | None = None, project_root: Path | None = None
) -> Any:
    """``local`` (default), ``ray`` (a runtime on this machine) or ``ray://host:port``."""
    if spec in (None, "", "local"):
        return LocalExecutor(workers)
    if spec == "ray":
        return RayExecutor(os.environ.get("RAY_ADDRESS") or None, project_root)
    if spec.startswith("ray://"):
        return RayExecutor(spec, project_root)
    raise InvalidInput(
        f"unknown executor {spec!r}", hint="use local, ray, or ray://host:port for a cluster"
    )
