"""One trial: cross-validate a configuration on fixed folds, with pruning and a deadline.

:func:`evaluate` is the only code that fits models during the search; the local loop, the
worker processes and the Ray tasks all call it, so a trial scores the same wherever it runs.
It returns the per-fold scores and, for a complete trial, the out-of-fold predictions
(classification: probabilities) that the ensemble is built from.

:func:`work` is the ask/tell loop one process runs against a study (in-memory or RDB): ask,
suggest, evaluate (reporting the running mean after each fold so the pruner can stop hopeless
trials), then store what the trial produced as user attributes and tell.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from triptych.automl import space
from triptych.automl.metrics import Metric

ATTR = "automl"  # user attribute: fold scores, duration, worker, error, why it stopped
OOF_ATTR = "oof"  # user attribute: the out-of-fold predictions, float32 little-endian, base64
COUNTED = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
# logging the final model costs about this share of its fit time again: skops writes every
# fitted array (a 10-class boosting model of 1,000 trees on digits' 1,437 rows: 1.55 s to fit,
# 1.23 s to log), and the budget covers it as it covers the refit
SAVE_PER_FIT = 0.8


@dataclass
class Outcome:
    """What evaluating one configuration gave."""

    state: str  # complete | pruned | failed
    fold_scores: list[float]
    duration: float
    oof: Any = None  # numpy array (rows, or rows x classes) for a complete trial
    error: str | None = None
    stopped: str | None = None  # "pruned" or "out of time" for a pruned trial
    duplicate_of: int | None = None  # the same configuration's earlier trial, reused
    oof_text: str | None = None  # the encoded out-of-fold predictions of that trial

    @property
    def cv_mean(self) -> float:
        return (
            float(sum(self.fold_scores) / len(self.fold_scores)) if self.fold_scores else math.nan
        )

    @property
    def cv_std(self) -> float:
        return cv_std(self.fold_scores)


def cv_std(scores: Sequence[float]) -> float:
    """Sample standard deviation of the fold scores (0 for a single fold)."""
    n = len(scores)
    if n < 2:
        return 0.0
    mean = sum(scores) / n
    return float(math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1)))


@contextlib.contextmanager
def contained() -> Iterator[None]:
    """How a trial (and the final refit) runs:

    - one thread per native library (OpenMP, BLAS): parallelism comes from running trials
      side by side (``n_jobs``, Ray); a small fit spread over threads is slower, and
      HistGradientBoosting's OpenMP threads next to BLAS threads can be ten times slower;
    - the warnings a search provokes on purpose — convergence, ill-conditioning, overflow in
      a bad region of the space — silenced, and nothing else."""
    from scipy.linalg import LinAlgWarning
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@dataclass
class Data:
    """The training data as every trial sees it."""

    X: Any
    y: Any
    fold: Any  # fold of each row
    classes: Any = None
    _splits: list[tuple[Any, Any]] = field(default_factory=list, repr=False)

    def splits(self) -> list[tuple[Any, Any]]:
        if not self._splits:
            import numpy as np

            k = int(self.fold.max()) + 1
            self._splits = [
                (np.flatnonzero(self.fold != i), np.flatnonzero(self.fold == i)) for i in range(k)
            ]
        return self._splits


def evaluate(
    params: dict[str, Any],
    ctx: space.Context,
    data: Data,
    metric: Metric,
    deadline: float | None = None,
    report: Callable[[int, float], bool] | None = None,
) -> Outcome:
    """Cross-validate ``params`` on ``data``'s folds.

    After each fold the running mean goes to ``report(fold, mean)``; True stops the trial as
    pruned. With a ``deadline`` (``time.time()``) the trial stops after a fold (pruned, "out
    of time") once, at its pace so far, it could not end *and be refit on all the rows and
    saved* (about ``cv / (cv - 1)`` folds' time, and :data:`SAVE_PER_FIT` of that) before the
    deadline: the final model may hold it, and the budget covers that. None never stops. An
    error in fitting or scoring is a failed trial, not an exception."""
    import numpy as np

    started = time.perf_counter()
    regression = ctx.task == "regression"
    n = len(data.y)
    oof = np.zeros(n) if regression else np.zeros((n, len(data.classes)))
    scores: list[float] = []
    splits = data.splits()
    try:
        with contained():
            for i, (train, test) in enumerate(splits):
                model = space.build(params, ctx)
                model.fit(data.X.iloc[train], data.y[train])
                x_test = data.X.iloc[test]
                pred = model.predict(x_test) if regression else _proba(model, x_test, data.classes)
                if not np.all(np.isfinite(pred)):
                    raise ValueError("the model predicted non-finite values")
                oof[test] = pred
                score = metric.score(data.y[test], pred, data.classes)
                if not math.isfinite(score):
                    raise ValueError(f"the fold's {metric.name} is {score}")
                scores.append(score)
                last = i == len(splits) - 1
                if report is not None and report(i, sum(scores) / len(scores)) and not last:
                    return Outcome("pruned", scores, _since(started), stopped="pruned")
                if deadline is not None and not last:
                    folds = len(splits)
                    refit = folds / (folds - 1) * (1 + SAVE_PER_FIT)  # on all rows, saved
                    ahead = (folds - i - 1) + refit
                    if time.time() + ahead * _since(started) / (i + 1) > deadline:
                        return Outcome("pruned", scores, _since(started), stopped="out of time")
    except Exception as e:
        return Outcome("failed", scores, _since(started), error=f"{type(e).__name__}: {e}"[:1000])
    return Outcome("complete", scores, _since(started), oof=oof)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _proba(model: Any, X: Any, classes: Any) -> Any:
    """Class probabilities with columns in ``classes`` order."""
    import numpy as np

    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    fitted = list(getattr(model, "classes_", classes))
    if fitted == list(classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(fitted):
        out[:, list(classes).index(c)] = proba[:, j]
    return out


# -- out-of-fold predictions as a user attribute --------------------------------------------------
def encode_oof(oof: Any) -> str:
    import numpy as np

    return base64.b64encode(np.ascontiguousarray(oof, dtype="<f4").tobytes()).decode("ascii")


def decode_oof(text: str, rows: int, task: str) -> Any:
    import numpy as np

    flat = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)
    return flat if task == "regression" else flat.reshape(rows, -1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- the ask/tell loop -----------------------------------------------------------------------------
@dataclass
class Quota:
    """How many trials the study may hold: ``n_trials`` counting finished and running trials,
    except the ``stale`` ones that were running when this session started (a killed run's)."""

    n_trials: int | None
    stale: frozenset[int] = frozenset()

    def reached(self, study: Any) -> bool:
        if self.n_trials is None:
            return False
        return self.count(study) >= self.n_trials

    def count(self, study: Any) -> int:
        from optuna.trial import TrialState

        states = tuple(TrialState[s] for s in COUNTED)
        trials = study.get_trials(deepcopy=False, states=states)
        return sum(1 for t in trials if t.number not in self.stale)


@dataclass
class Finished:
    """A trial as it ended, for the recorder and the progress bar."""

    number: int
    params: dict[str, Any]
    outcome: Outcome
    start_ms: int
    end_ms: int


def tell(study: Any, trial: Any, outcome: Outcome, worker: str, reported: bool) -> None:
    """Store the outcome on the trial (user attributes) and finish it.

    ``reported``: the running means were already reported fold by fold (local and worker
    processes); a Ray result reports them now, so every trial has the same history."""
    from optuna.trial import TrialState

    info: dict[str, Any] = {
        "fold_scores": outcome.fold_scores,
        "duration": round(outcome.duration, 4),
        "worker": worker,
    }
    if outcome.error:
        info["error"] = outcome.error
    if outcome.stopped:
        info["stopped"] = outcome.stopped
    if outcome.duplicate_of is not None:
        info["duplicate_of"] = outcome.duplicate_of
    if not reported:
        for i in range(len(outcome.fold_scores)):
            trial.report(sum(outcome.fold_scores[: i + 1]) / (i + 1), i)
    trial.set_user_attr(ATTR, info)
    if outcome.state == "complete":
        trial.set_user_attr(OOF_ATTR, outcome.oof_text or encode_oof(outcome.oof))
        study.tell(trial, outcome.cv_mean)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def work(
    study: Any,
    ctx: space.Context,
    data: Data,
    metric: Metric,
    deadline: float | Callable[[], float],
    quota: Quota,
    on_trial: Callable[[Finished], object] | None = None,
) -> None:
    """Run trials on ``study`` until ``deadline`` (``time.time()``; a callable is asked again
    before each trial, so the driver can keep time for the final refit) or the quota.

    The first trial of a study (the baseline) always runs to the end, whatever the deadline."""
    from optuna.trial import TrialState

    me = worker_id()
    while True:
        now_deadline = deadline() if callable(deadline) else deadline
        if time.time() >= now_deadline and _has_complete(study):
            return
        if quota.reached(study):
            return
        trial = study.ask()
        started = _now_ms()
        try:
            params = space.suggest(trial, ctx)
            again = duplicate(study, params)
            if again is not None:
                tell(study, trial, again, me, reported=False)
                if on_trial is not None:
                    on_trial(Finished(trial.number, params, again, started, _now_ms()))
                continue

            def report(step: int, value: float, trial: Any = trial) -> bool:
                trial.report(value, step)
                return bool(trial.should_prune())

            outcome = evaluate(
                params, ctx, data, metric, None if trial.number == 0 else now_deadline, report
            )
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)  # Ctrl-C, or a bug: never left RUNNING
            raise
        tell(study, trial, outcome, me, reported=True)
        if on_trial is not None:
            on_trial(Finished(trial.number, params, outcome, started, _now_ms()))


def duplicate(study: Any, params: dict[str, Any]) -> Outcome | None:
    """The outcome of a complete trial with exactly these parameters, reused instead of
    computed again (TPE suggests a parameter-free estimator such as BayesianRidge more than
    once); None when there is none."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.params == params and OOF_ATTR in t.user_attrs:
            info = t.user_attrs.get(ATTR) or {}
            return Outcome(
                "complete",
                [float(s) for s in info.get("fold_scores", [])],
                0.0,
                duplicate_of=int(info.get("duplicate_of", t.number)),
                oof_text=t.user_attrs[OOF_ATTR],
            )
    return None


def _has_complete(study: Any) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _now_ms() -> int:
    return int(time.time() * 1000)
