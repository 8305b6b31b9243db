"""``fit``: check the inputs, search, choose the final model, record everything.

The order of work, and why:

1. Everything the user gave is checked before anything is recorded (InvalidInput, no run,
   no study).
2. The study is created or loaded (``load_if_exists``) and checked to be one computed on the
   same data, task, metric, folds and space; a new study gets the baseline and the warm-start
   defaults enqueued, so the baseline is trial 0.
3. A parent run (nested under the active run when there is one) holds the settings, the data
   input, the leaderboard, the final model and the scores; each trial is a nested run.
4. The search gets at most 90% of ``budget_s``, and stops earlier when refitting the models
   the final choice may hold would not fit in the rest (:func:`selection.refit_seconds`), so
   the search, the refit and the logging stay within ``budget_s``.
5. Final model: see :mod:`triptych.automl.selection`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

from triptych.automl import executors, inputs, records, space, studies
from triptych.automl import metrics as metrics_module
from triptych.automl import storage as storage_module
from triptych.automl.progress import Progress
from triptych.automl.result import AutoMLResult, holdout_score
from triptych.automl.search import Data, Finished, Quota, contained
from triptych.automl.selection import Choice, choose, longest_fold_seconds, refit_seconds
from triptych.errors import InvalidInput

STUDY_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
SEARCH_SHARE = 0.9  # of budget_s at most for the search; the rest for the final refit
FINISH_SECONDS = 1.0  # choosing, logging the leaderboard and a small model (measured: 0.6-1.2 s)
TAG = records.TAG


def fit(
    data: Any,
    target: str,
    task: str = "regression",
    metric: str | None = None,
    budget_s: float = 60,
    n_trials: int | None = None,
    cv: int = 5,
    executor: str = "local",
    seed: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    n_jobs: int = 1,
    experiment: str | None = None,
    *,
    test: Any = None,
    estimators: Sequence[str] | None = None,
    progress: bool | None = None,
) -> AutoMLResult:
    """Search preprocessing x estimators for ``target`` and return the final model.

    ``data``/``test``: a DataFrame, a ``datasets:/NAME@VERSION`` address or a CSV/Parquet
    path. ``budget_s``: wall-clock seconds for the search and the final refit; ``n_trials``:
    stop after that many trials in the study (earlier sessions' trials count). ``storage``:
    None (in memory), "auto" (next to the triptych store) or a database URL; with a storage,
    running ``fit`` again with the same ``study_name`` (default: derived from the data and
    settings) continues the study. ``n_jobs``: parallel trials (local: processes on an RDB
    study, "auto" when ``storage`` is None; ray: tasks in flight). ``estimators``: restrict
    the space (the baseline always stays). ``progress``: a progress bar on stderr (default:
    when stderr is a terminal). See docs/automl.md."""
    started = time.time()
    task = metrics_module.check_task(task)
    m = metrics_module.get(task, metric)
    budget = _positive_number("budget_s", budget_s)
    if n_trials is not None and (not _is_int(n_trials) or n_trials < 1):
        raise InvalidInput(f"n_trials must be a positive integer or None, not {n_trials!r}")
    if not _is_int(cv) or cv < 2:
        raise InvalidInput(f"cv must be an integer >= 2, not {cv!r}")
    if not _is_int(seed):
        raise InvalidInput(f"seed must be an integer, not {seed!r}")
    executors.check(executor, n_jobs)
    if study_name is not None and (
        not isinstance(study_name, str) or not STUDY_NAME.fullmatch(study_name)
    ):
        raise InvalidInput(
            f"invalid study_name {study_name!r}",
            hint="use 1-200 letters, digits and - _ . : @",
        )
    prepared = inputs.prepare(data, target, task, cv)
    held_out = inputs.holdout(test, prepared) if test is not None else None
    fold = inputs.folds(prepared.y, task, cv, seed)
    import numpy as np

    ctx = space.make_context(
        task,
        prepared.numeric,
        prepared.categorical,
        prepared.n_rows,
        prepared.n_rows - int(np.bincount(fold).max()),
        seed,
        estimators,
    )
    from triptych.tracking import fluent

    client = fluent._client()
    local = executor == "local"
    if local and n_jobs > 1 and storage is None:
        storage = "auto"  # worker processes share the study through a database
    spec = storage_module.resolve(storage, client.settings.tracking_uri)
    if local and n_jobs > 1 and spec is None:  # pragma: no cover - resolve never returns None here
        raise InvalidInput("n_jobs > 1 needs a storage")
    name = study_name or storage_module.default_study_name(
        prepared.digest, task, m.name, cv, seed, ctx.digest()
    )

    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trial outcomes are in the leaderboard
    optuna_storage = storage_module.open_storage(spec)
    try:
        study = studies.open_study(optuna_storage, name, m.direction, seed)
        identity = {
            "data": prepared.digest,
            "task": task,
            "metric": m.name,
            "cv": cv,
            "seed": seed,
            "rows": prepared.n_rows,
            "space": ctx.digest(),
        }
        if studies.claim(study, identity):
            for config in space.defaults(ctx):
                study.enqueue_trial(config)
        return _run(
            study=study,
            name=name,
            spec=spec,
            prepared=prepared,
            held_out=held_out,
            fold=fold,
            ctx=ctx,
            metric=m,
            budget=budget,
            started=started,
            n_trials=n_trials,
            cv=cv,
            seed=seed,
            executor=executor,
            n_jobs=n_jobs,
            experiment=experiment,
            progress=progress,
            client=client,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
        storage_module.close_storage(optuna_storage)


def _run(
    *,
    study: Any,
    name: str,
    spec: storage_module.StorageSpec | None,
    prepared: inputs.Prepared,
    held_out: tuple[Any, Any] | None,
    fold: Any,
    ctx: space.Context,
    metric: metrics_module.Metric,
    budget: float,
    started: float,
    n_trials: int | None,
    cv: int,
    seed: int,
    executor: str,
    n_jobs: int,
    experiment: str | None,
    progress: bool | None,
    client: Any,
) -> AutoMLResult:
    from optuna.trial import TrialState

    from triptych.tracking import fluent

    before = study.get_trials(deepcopy=False)
    resumed = sum(1 for t in before if t.state.is_finished())
    stale = frozenset(t.number for t in before if t.state == TrialState.RUNNING)
    quota = Quota(n_trials, stale)
    tags = {f"{TAG}.study": name, f"{TAG}.task": ctx.task}
    if spec is not None:
        tags[f"{TAG}.storage"] = spec.describe()
    if resumed:
        tags[f"{TAG}.resumed_trials"] = str(resumed)
    nested = fluent.active_run() is not None
    with fluent.start_run(
        experiment=experiment, name=f"automl-{ctx.task}", nested=nested, tags=tags
    ) as run:
        run.log_params(
            {
                "task": ctx.task,
                "metric": metric.name,
                "target": prepared.target,
                "budget_s": budget,
                "n_trials": n_trials,
                "cv": cv,
                "seed": seed,
                "executor": executor,
                "n_jobs": n_jobs,
                "estimators": ",".join(ctx.estimators),
            }
        )
        run.log_input(
            prepared.source, name=None if isinstance(prepared.source, str) else "automl.data"
        )
        recorder = records.TrialRecorder(client, run.run_id, name, ctx)
        deadline = started + SEARCH_SHARE * budget
        finish = started + budget

        def keep_time() -> float:
            """The search deadline, moved earlier to leave time for the refit and logging."""
            trials = study.get_trials(deepcopy=False)
            needed = (
                FINISH_SECONDS
                + refit_seconds(trials, metric.direction, cv)
                + longest_fold_seconds(trials, cv)
            )
            return min(deadline, finish - needed)

        data = Data(prepared.X, prepared.y, fold, prepared.classes)
        with Progress(progress, SEARCH_SHARE * budget, deadline, metric.name) as bar:

            def on_trial(finished: Finished) -> None:
                recorder(finished)
                if bar.enabled:
                    _show(bar, study)

            _search(
                study,
                ctx,
                data,
                metric,
                deadline,
                keep_time,
                quota,
                on_trial,
                executor,
                n_jobs,
                run,
                spec,
                name,
                seed,
                client,
            )
            bar.note("refitting the final model")
            searched = time.time() - started
            trials = study.get_trials(deepcopy=False)
            choice = choose(trials, ctx, data, metric)
            with contained():
                model = choice.build(ctx).fit(prepared.X, prepared.y)
        fitted = time.time() - started
        run_ids = records.trial_run_ids(client, run.info.experiment_id, name)
        run_ids.update(recorder.run_ids)
        board = records.leaderboard(trials, ctx, metric.direction, choice.members, run_ids)
        csv_text, json_text = records.leaderboard_files(board)
        run.log_text(csv_text, "leaderboard.csv")
        run.log_text(json_text, "leaderboard.json")
        run.log_dict(choice.describe(metric, trials, ctx), "ensemble.json")
        from triptych.models.packaging import log_model

        logged = log_model(model, "model", input_example=prepared.X.head(5), run=run)
        counts = {
            s: sum(1 for t in trials if t.state.name == s) for s in ("COMPLETE", "PRUNED", "FAIL")
        }
        scores = {
            f"cv_{metric.name}": choice.score,
            f"cv_{metric.name}_single": choice.single_score,
            f"best_cv_{metric.name}": choice.best_cv,
            "trials_complete": counts["COMPLETE"],
            "trials_pruned": counts["PRUNED"],
            "trials_failed": counts["FAIL"],
            "ensemble_size": len(choice.members),
            "search_seconds": round(searched, 3),
            "fit_seconds": round(fitted, 3),
        }
        if choice.ensemble_score is not None:
            scores[f"cv_{metric.name}_ensemble"] = choice.ensemble_score
        test_score = None
        if held_out is not None:
            test_score = holdout_score(model, held_out[0], held_out[1], metric.name, ctx.task)
            scores[f"test_{metric.name}"] = test_score
        run.log_metrics({k: float(v) for k, v in scores.items() if math.isfinite(float(v))})
        run.set_tags(
            {
                f"{TAG}.model": choice.kind,
                f"{TAG}.single_trial": str(choice.single.number),
            }
        )
        best = _best_info(choice, trials, ctx, run_ids)
    return AutoMLResult(
        model=model,
        leaderboard=board,
        best=best,
        run_id=run.run_id,
        cv_score=choice.score,
        metric=metric.name,
        task=ctx.task,
        target=prepared.target,
        kind=choice.kind,
        members=dict(choice.members),
        study_name=name,
        storage=spec.describe() if spec else None,
        model_uri=logged.uri,
        cv_scores={
            "single": choice.single_score,
            **({"ensemble": choice.ensemble_score} if choice.ensemble_score is not None else {}),
            "best_trial": choice.best_cv,
        },
        test_score=test_score,
    )


def _search(
    study: Any,
    ctx: space.Context,
    data: Data,
    metric: metrics_module.Metric,
    deadline: float,
    keep_time: Any,
    quota: Quota,
    on_trial: Any,
    executor: str,
    n_jobs: int,
    run: Any,
    spec: storage_module.StorageSpec | None,
    name: str,
    seed: int,
    client: Any,
) -> None:
    from triptych.automl.search import work

    if executor == "ray" or executor.startswith("ray://"):
        address = executor if executor.startswith("ray://") else None
        executors.run_ray(study, ctx, data, metric, deadline, quota, on_trial, n_jobs, address)
        return
    if n_jobs == 1:
        work(study, ctx, data, metric, keep_time, quota, on_trial)
        return
    assert spec is not None
    errors = executors.run_processes(
        study,
        ctx,
        data,
        metric,
        deadline,
        quota,
        on_trial,
        n_jobs,
        {
            "storage": spec.to_dict(),
            "study_name": name,
            "seed": seed,
            "tracking_uri": client.settings.tracking_uri,
            "artifact_uri": client.settings.artifact_uri,
            "parent_run_id": run.run_id,
        },
    )
    if errors:
        run.set_tag(f"{TAG}.worker_errors", "\n".join(errors)[:2000])


def _show(bar: Progress, study: Any) -> None:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.is_finished()]
    complete = [t.value for t in done if t.state == TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        best = min(complete) if study.direction.name == "MINIMIZE" else max(complete)
    pruned = sum(1 for t in done if t.state == TrialState.PRUNED)
    failed = sum(1 for t in done if t.state == TrialState.FAIL)
    bar.update(len(done), pruned, failed, best)


def _best_info(
    choice: Choice, trials: Sequence[Any], ctx: space.Context, run_ids: dict[int, str]
) -> dict[str, Any]:
    single = choice.single
    p = choice.params[single.number]
    return {
        "number": single.number,
        "estimator": p.get("estimator"),
        "preprocessing": space.preprocessing(p, ctx),
        "params": space.estimator_params(p),
        "cv_mean": single.cv_mean,
        "cv_std": single.cv_std,
        "complexity": single.complexity,
        "oof_score": choice.single_score,
        "run_id": run_ids.get(single.number),
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)
