"""Metrics AutoML optimises: name, direction, and a score from out-of-fold predictions.

Every metric scores the same representation the search keeps for the ensemble: predicted
values for regression, a matrix of class probabilities (columns in sorted class order) for
classification. So a fold score, a trial's pooled out-of-fold score and an ensemble's score
are computed by one function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput

TASKS = ("regression", "classification")
DEFAULT_METRIC = {"regression": "mse", "classification": "accuracy"}


@dataclass(frozen=True)
class Metric:
    """``direction`` is ``minimize`` or ``maximize``; ``score(y, pred, classes)``."""

    name: str
    task: str
    direction: str
    fn: Callable[[Any, Any, Any], float]
    # an unbounded loss: regret(incumbent, challenger), what the challenger can lose to the
    # incumbent on one row (mean over rows of the worst label); None for a metric whose
    # per-row cost is bounded by the data
    regret: Callable[[Any, Any], float] | None = None

    @property
    def unbounded(self) -> bool:
        """Whether one row can cost without limit (log loss): see selection.displaces."""
        return self.regret is not None

    def score(self, y: Any, pred: Any, classes: Any = None) -> float:
        return float(self.fn(y, pred, classes))

    def loss(self, y: Any, pred: Any, classes: Any = None) -> float:
        """Lower is better, whatever the direction (what the greedy ensemble minimises)."""
        value = self.score(y, pred, classes)
        return value if self.direction == "minimize" else -value

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self.direction == "minimize" else a > b


def _mse(y: Any, pred: Any, _: Any) -> float:
    from sklearn.metrics import mean_squared_error

    return float(mean_squared_error(y, pred))


def _rmse(y: Any, pred: Any, _: Any) -> float:
    return float(_mse(y, pred, None) ** 0.5)


def _mae(y: Any, pred: Any, _: Any) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, pred))


def _r2(y: Any, pred: Any, _: Any) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, pred))


def labels(proba: Any, classes: Any) -> Any:
    """The predicted class of each row of a probability matrix (ties: the first class)."""
    import numpy as np

    return np.asarray(classes)[np.argmax(proba, axis=1)]


def _accuracy(y: Any, proba: Any, classes: Any) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, labels(proba, classes)))


def _balanced_accuracy(y: Any, proba: Any, classes: Any) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, labels(proba, classes)))


def _f1(y: Any, proba: Any, classes: Any) -> float:
    from sklearn.metrics import f1_score

    if len(classes) == 2:
        return float(f1_score(y, labels(proba, classes), pos_label=classes[1]))
    return float(f1_score(y, labels(proba, classes), average="macro", labels=classes))


def _log_loss(y: Any, proba: Any, classes: Any) -> float:
    import numpy as np
    from sklearn.metrics import log_loss

    p = np.clip(proba, 1e-15, 1.0)
    return float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=classes))


def _log_loss_regret(incumbent: Any, challenger: Any) -> float:
    """Mean over rows of the most the challenger's log loss can exceed the incumbent's on
    that row: max over classes of log(p_incumbent / p_challenger), the row labelled with the
    class the challenger rules out most firmly *compared with the incumbent*. Never negative
    (both rows of probabilities sum to 1), and 0 only for identical predictions."""
    import numpy as np

    def normalised(proba: Any) -> Any:
        p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
        return p / p.sum(axis=1, keepdims=True)

    ratio = np.log(normalised(incumbent)) - np.log(normalised(challenger))
    return float(np.mean(ratio.max(axis=1)))


def _roc_auc(y: Any, proba: Any, classes: Any) -> float:
    from sklearn.metrics import roc_auc_score

    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("mse", "regression", "minimize", _mse),
        Metric("rmse", "regression", "minimize", _rmse),
        Metric("mae", "regression", "minimize", _mae),
        Metric("r2", "regression", "maximize", _r2),
        Metric("accuracy", "classification", "maximize", _accuracy),
        Metric("balanced_accuracy", "classification", "maximize", _balanced_accuracy),
        Metric("f1", "classification", "maximize", _f1),
        Metric("log_loss", "classification", "minimize", _log_loss, _log_loss_regret),
        Metric("roc_auc", "classification", "maximize", _roc_auc),
    )
}


def check_task(task: Any) -> str:
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}", hint="use 'regression' or 'classification'")
    return str(task)


def get(task: str, name: str | None) -> Metric:
    """The metric ``name`` for ``task`` (its default when None), or InvalidInput."""
    task = check_task(task)
    metric = METRICS.get(name or DEFAULT_METRIC[task])
    if metric is None or metric.task != task:
        names = ", ".join(m.name for m in METRICS.values() if m.task == task)
        raise InvalidInput(f"unknown {task} metric {name!r}", hint=f"use one of: {names}")
    return metric
