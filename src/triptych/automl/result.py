"""What ``triptych.automl.fit`` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from triptych.automl import metrics as metrics_module


@dataclass
class AutoMLResult:
    """The fitted model, the leaderboard of every trial, and where it was all recorded.

    ``cv_score`` is the final model's pooled out-of-fold score on the training data (for an
    ensemble slightly optimistic: its weights were chosen on those predictions); a held-out
    score comes only from :meth:`score` or ``fit(..., test=)`` and is reported separately."""

    model: Any  # a fitted scikit-learn estimator: a Pipeline, or a VotingRegressor/Classifier
    leaderboard: Any  # pandas DataFrame, one row per trial, best first
    best: dict[str, Any]  # the single model the one-standard-error rule chose
    run_id: str
    cv_score: float
    metric: str
    task: str
    target: str
    kind: str  # "ensemble" or "single"
    members: dict[int, float]  # trial number -> weight in the final model
    study_name: str
    storage: str | None
    model_uri: str
    cv_scores: dict[str, float] = field(default_factory=dict)  # single, ensemble, best trial
    test_score: float | None = None

    @property
    def direction(self) -> str:
        return metrics_module.METRICS[self.metric].direction

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.model.predict_proba(X)

    def score(self, X: Any, y: Any = None, *, log: bool = True) -> float:
        """The metric on a held-out set (``y``, or the target column of ``X``); logged on the
        search's run as ``test_<metric>`` unless ``log=False``."""
        from triptych.errors import InvalidInput

        if y is None:
            if self.target not in getattr(X, "columns", ()):
                raise InvalidInput(
                    f"give y, or X with the target column {self.target!r}",
                    hint="result.score(X_test, y_test)",
                )
            y = X[self.target]
            X = X.drop(columns=[self.target])
        value = holdout_score(self.model, X, y, self.metric, self.task)
        if not math.isfinite(value):
            raise InvalidInput(f"the held-out {self.metric} is {value}")
        self.test_score = value
        if log:
            from triptych.store.base import now_ms
            from triptych.store.entities import Metric
            from triptych.tracking.fluent import _client

            _client().log_batch(self.run_id, [Metric(f"test_{self.metric}", value, 0, now_ms())])
        return value

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        board = self.leaderboard.head(top) if top else self.leaderboard
        rows = []
        for row in board.to_dict(orient="records"):
            rows.append(
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            )
        return {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "task": self.task,
            "metric": self.metric,
            "direction": self.direction,
            "kind": self.kind,
            "cv_score": self.cv_score,
            "cv_scores": self.cv_scores,
            "test_score": self.test_score,
            "members": {str(k): v for k, v in self.members.items()},
            "best": self.best,
            "study_name": self.study_name,
            "storage": self.storage,
            "leaderboard": rows,
        }


def holdout_score(model: Any, X: Any, y: Any, metric: str, task: str) -> float:
    """``metric`` of ``model`` on ``(X, y)``, computed as during the search."""
    import numpy as np

    m = metrics_module.METRICS[metric]
    if task == "regression":
        return m.score(np.asarray(y, dtype=np.float64), model.predict(X))
    classes = np.asarray(model.classes_)
    labels = np.asarray(y)
    labels = labels if labels.dtype.kind in "biuf" else labels.astype(object)
    return m.score(labels, np.asarray(model.predict_proba(X)), classes)
