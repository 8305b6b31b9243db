"""Where trials run: this process, worker processes on one RDB study, or Ray tasks.

- ``local``, ``n_jobs=1``: the ask/tell loop of :func:`triptych.automl.search.work` here.
- ``local``, ``n_jobs=N``: this process plus N-1 worker processes (``python -m
  triptych.automl.worker``), all running the same loop on the same RDB study. The data goes to
  them once as Parquet files in a temporary folder; each records its own trial runs.
- ``ray``: the driver asks Optuna for configurations and keeps up to one task per CPU (or
  ``n_jobs``) in flight; ``X``/``y`` and the folds are put in the object store once. Tasks run
  all their folds (no pruning mid-task) and stop at the deadline; the driver reports their
  fold means to the study afterwards, so every trial has the same history, and records runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triptych.automl import metrics as metrics_module
from triptych.automl import space
from triptych.automl.search import (
    Data,
    Finished,
    Outcome,
    Quota,
    duplicate,
    tell,
    work,
    worker_id,
)
from triptych.errors import InvalidInput, MissingDependency

EXECUTORS = ("local", "ray")
WORKER_GRACE_S = 120.0  # how long after the deadline a worker may take to finish its trial


def check(executor: Any, n_jobs: Any) -> None:
    if not isinstance(executor, str) or not (
        executor in EXECUTORS or executor.startswith("ray://")
    ):
        raise InvalidInput(
            f"unknown executor {executor!r}", hint="use local, ray, or ray://host:port"
        )
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise InvalidInput(f"n_jobs must be a positive integer, not {n_jobs!r}")


# -- worker processes ------------------------------------------------------------------------------
def run_processes(
    study: Any,
    ctx: space.Context,
    data: Data,
    metric: metrics_module.Metric,
    deadline: float,
    quota: Quota,
    on_trial: Callable[[Finished], None],
    n_jobs: int,
    job: dict[str, Any],
) -> list[str]:
    """This process and ``n_jobs - 1`` workers on one RDB study; returns the workers' errors.

    ``job``: what a worker needs besides the data (storage, study name, tracking addresses,
    the parent run id, the seed)."""
    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="triptych-automl-") as tmp:
        folder = Path(tmp)
        data.X.to_parquet(folder / "X.parquet", index=False)
        pd.DataFrame({"y": data.y}).to_parquet(folder / "y.parquet", index=False)
        np.save(folder / "fold.npy", data.fold, allow_pickle=False)
        spec = {
            **job,
            "ctx": ctx.to_dict(),
            "metric": metric.name,
            "deadline": deadline,
            "n_trials": quota.n_trials,
            "stale": sorted(quota.stale),
        }
        (folder / "job.json").write_text(json.dumps(spec), encoding="utf-8")
        procs = []
        for index in range(1, n_jobs):
            log = open(folder / f"worker-{index}.log", "wb")  # noqa: SIM115 - closed below
            procs.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "triptych.automl.worker", str(folder), str(index)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    log,
                    index,
                )
            )
        errors: list[str] = []
        try:
            work(study, ctx, data, metric, deadline, quota, on_trial)
            for proc, _, index in procs:
                try:
                    proc.wait(timeout=max(1.0, deadline - time.time()) + WORKER_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    errors.append(f"worker {index} did not stop in time and was killed")
        finally:
            for proc, log, _ in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                log.close()
        for proc, _, index in procs:
            if proc.returncode != 0:
                tail = (folder / f"worker-{index}.log").read_text(errors="replace")[-800:]
                errors.append(f"worker {index} exited with {proc.returncode}: {tail.strip()}")
        return errors


# -- Ray -------------------------------------------------------------------------------------------
def _ray_trial(
    params: dict[str, Any],
    ctx: dict[str, Any],
    data: Data,
    metric: str,
    deadline: float | None,
) -> tuple[Outcome, str]:
    from triptych.automl.search import evaluate

    context = space.Context.from_dict(ctx)
    outcome = evaluate(params, context, data, metrics_module.METRICS[metric], deadline)
    return outcome, worker_id()


def run_ray(
    study: Any,
    ctx: space.Context,
    data: Data,
    metric: metrics_module.Metric,
    deadline: float,
    quota: Quota,
    on_trial: Callable[[Finished], None],
    n_jobs: int,
    address: str | None,
) -> None:
    """Trials as Ray tasks (one CPU each), the study driven from here by ask/tell."""
    try:
        import ray
    except ImportError:
        raise MissingDependency(
            "the ray executor needs Ray", hint="pip install 'triptych[ray]'"
        ) from None
    from optuna.trial import TrialState

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if not address:
            kwargs["include_dashboard"] = False
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, **kwargs)
    parallelism = n_jobs if n_jobs > 1 else max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
    data_ref = ray.put(data)
    context = ctx.to_dict()
    pending: dict[Any, tuple[Any, dict[str, Any], int]] = {}
    started_any = False
    try:
        while True:
            while len(pending) < parallelism and not quota.reached(study):
                if time.time() >= deadline and (started_any or _has_complete(study)):
                    break
                trial = study.ask()
                params = space.suggest(trial, ctx)
                again = duplicate(study, params)
                if again is not None:
                    tell(study, trial, again, worker_id(), reported=False)
                    on_trial(Finished(trial.number, params, again, _now_ms(), _now_ms()))
                    continue
                limit = None if trial.number == 0 else deadline
                ref = remote.remote(params, context, data_ref, metric.name, limit)
                pending[ref] = (trial, params, _now_ms())
                started_any = True
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                trial, params, start = pending.pop(ref)
                try:
                    outcome, where = ray.get(ref)
                except Exception as e:  # the task itself died (worker crash, OOM)
                    outcome = Outcome("failed", [], 0.0, error=f"{type(e).__name__}: {e}"[:1000])
                    where = "ray"
                tell(study, trial, outcome, where, reported=False)
                on_trial(Finished(trial.number, params, outcome, start, _now_ms()))
    except BaseException:
        for ref, (trial, _, _) in pending.items():
            ray.cancel(ref, force=True)
            study.tell(trial, state=TrialState.FAIL)
        raise


def _has_complete(study: Any) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _now_ms() -> int:
    return int(time.time() * 1000)
