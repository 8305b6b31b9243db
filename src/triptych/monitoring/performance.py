"""Live model performance from delayed labels, per time window and model version, beside the
score the model had offline.

The offline score is the registered version's run metric (``test_mse``, ``mse``, ``val_mse``
… the first found; the diabetes example and the pipeline's evaluate step log ``mse``), so
``decay`` says how much worse the model does on real traffic than when it was chosen:
``(live - offline) / |offline|`` for losses, ``(offline - live) / |offline|`` for scores. A
positive decay is worse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas

    from triptych.tracking.client import Client

TASKS = ("regression", "classification")
#: The metric each task is judged by, whether lower is better, and the run metric names
#: searched for the offline score (first found wins).
PRIMARY = {
    "regression": ("mse", True, ("test_mse", "mse", "val_mse", "eval_mse", "holdout_mse")),
    "classification": (
        "accuracy",
        False,
        ("test_accuracy", "accuracy", "val_accuracy", "eval_accuracy", "holdout_accuracy"),
    ),
}
MAX_CLASSES = 20  # integer labels with more distinct values than this are a regression
_WINDOW = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNIT_MS = {"s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_MS["w"] = 7 * _UNIT_MS["d"]


@dataclass
class Performance:
    """Metrics per window and model version; ``notes`` says what could not be computed."""

    deployment: str
    task: str
    window_ms: int
    frame: pandas.DataFrame  # one row per (window_start, model_version)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        rows = self.frame.astype(object).where(self.frame.notna(), None).to_dict("records")
        for row in rows:
            row["window_start"] = int(row["window_start"].value // 1_000_000)
        return {
            "deployment": self.deployment,
            "task": self.task,
            "window_ms": self.window_ms,
            "windows": rows,
            "notes": self.notes,
        }


def parse_window(text: str) -> int:
    """``"1h"``, ``"30m"``, ``"1d"`` … in milliseconds."""
    m = _WINDOW.match(str(text))
    if not m or int(m[1]) <= 0:
        raise InvalidInput(
            f"invalid window {text!r}", hint="use a positive count and a unit: 30m, 1h, 1d, 1w"
        )
    return int(m[1]) * _UNIT_MS[m[2]]


# -- predictions as metric inputs ---------------------------------------------------------------
def _probabilities(prediction: Any) -> dict[Any, float] | None:
    """Class probabilities carried by a logged output, if any: a dict with ``probabilities``
    (class -> p) or a ``{class: p}`` mapping of numbers."""
    if isinstance(prediction, dict):
        probs = prediction.get("probabilities", prediction.get("proba"))
        if isinstance(probs, dict):
            return {k: float(v) for k, v in probs.items()}
        if prediction and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in prediction.values()
        ):
            return {k: float(v) for k, v in prediction.items()}
    return None


def _predicted_class(prediction: Any) -> Any:
    if isinstance(prediction, dict):
        for key in ("label", "prediction", "class"):
            if key in prediction:
                return prediction[key]
        probs = _probabilities(prediction)
        if probs:
            return max(probs, key=lambda k: probs[k])
    return prediction


def _class(value: Any) -> str:
    """A class as text, so that 1, 1.0 and "1" (a JSON object key) are the same class."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def infer_task(joined: pandas.DataFrame) -> str:
    """Classification when labels or predictions are text, booleans, dicts of probabilities,
    or few distinct integers; regression otherwise."""
    labels = list(joined["label"])
    predictions = list(joined["prediction"])
    if not labels:
        return "regression"
    if not all(_is_number(v) for v in labels) or not all(_is_number(v) for v in predictions):
        return "classification"
    integral = all(float(v).is_integer() for v in labels + predictions)
    return "classification" if integral and len(set(labels)) <= MAX_CLASSES else "regression"


def _metrics(rows: pandas.DataFrame, task: str, notes: set[str]) -> dict[str, float | None]:
    import numpy as np
    from sklearn import metrics

    y = list(rows["label"])
    if task == "regression":
        try:
            y_true = np.asarray(y, dtype=float)
            y_pred = np.asarray(list(rows["prediction"]), dtype=float)
        except (TypeError, ValueError):
            raise InvalidInput(
                "labels or predictions are not numbers, so this is not a regression",
                hint="pass task='classification'",
            ) from None
        return {
            "mse": float(metrics.mean_squared_error(y_true, y_pred)),
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
            "r2": float(metrics.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        }
    predicted = [_predicted_class(p) for p in rows["prediction"]]
    labels_true = [_class(v) for v in y]
    labels_pred = [_class(v) for v in predicted]
    classes = sorted({*labels_true, *labels_pred})
    average = "binary" if len(classes) == 2 else "macro"
    out: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(labels_true, labels_pred)),
        "f1": float(
            metrics.f1_score(
                labels_true,
                labels_pred,
                average=average,
                pos_label=classes[-1] if average == "binary" else 1,
                zero_division=0,
            )
        ),
        "roc_auc": None,
    }
    probs = [_probabilities(p) for p in rows["prediction"]]
    if any(p is None for p in probs):
        notes.add("roc_auc skipped: the model's logged outputs carry no class probabilities")
    elif len(set(labels_true)) < 2:
        notes.add("roc_auc skipped in windows whose labels hold a single class")
    else:
        keys = sorted({_class(k) for p in probs if p for k in p})
        matrix = np.array(
            [
                [float({_class(k): v for k, v in p.items()}.get(k, 0.0)) for k in keys]
                for p in probs
                if p
            ]
        )
        try:
            if len(keys) == 2:
                out["roc_auc"] = float(
                    metrics.roc_auc_score([t == keys[1] for t in labels_true], matrix[:, 1])
                )
            else:
                out["roc_auc"] = float(
                    metrics.roc_auc_score(labels_true, matrix, multi_class="ovr", labels=keys)
                )
        except ValueError as e:
            notes.add(f"roc_auc skipped: {e}")
    return out


# -- offline scores -----------------------------------------------------------------------------
def offline_score(
    model_name: str | None, version: int | None, task: str, *, client: Client
) -> tuple[str | None, float | None]:
    """(metric name, value) of the registered version's run, or (None, None) when the version
    or its run logged none of the known names."""
    if not model_name or version is None:
        return None, None
    from triptych.models import registry

    try:
        mv = registry.get(f"models:/{model_name}/{int(version)}", client=client)
        if mv.run_id is None:
            return None, None
        run = client.get_run(mv.run_id)
    except NotFound:
        return None, None
    for key in PRIMARY[task][2]:
        if key in run.metrics:
            return key, float(run.metrics[key])
    return None, None


def _decay(live: float | None, offline: float | None, lower_is_better: bool) -> float | None:
    if live is None or offline is None or offline == 0 or math.isnan(live):
        return None
    change = (live - offline) if lower_is_better else (offline - live)
    return change / abs(offline)


# -- the table ----------------------------------------------------------------------------------
def over_time(
    deployment: str,
    *,
    window: str = "1h",
    task: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    client: Client | None = None,
) -> Performance:
    """Live performance of ``deployment`` per ``window`` (UTC-aligned) and model version, from
    the predictions that have labels (:func:`triptych.monitoring.labels.join`), with the
    version's offline score and the relative decay of the primary metric."""
    import pandas as pd

    from triptych.monitoring import labels

    if task is not None and task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}", hint="use regression or classification")
    window_ms = parse_window(window)
    c = labels._client(client)
    joined = labels.join(deployment, start_ms=start_ms, end_ms=end_ms, client=c)
    task = task or infer_task(joined)
    primary, lower_is_better, _ = PRIMARY[task]
    notes: set[str] = set()
    if joined.attrs.get("mismatched"):
        notes.add(
            f"{joined.attrs['mismatched']} labelled requests left out: their label count does "
            "not match their predicted rows"
        )
    rows: list[dict[str, Any]] = []
    offline: dict[tuple[Any, Any], tuple[str | None, float | None]] = {}
    if len(joined):
        joined = joined.assign(window_start=joined["time_ms"] // window_ms * window_ms)
        groups = joined.groupby(["window_start", "model_version"], sort=True, dropna=False)
        for (start, version), group in groups:
            name = group["model_name"].iloc[0]
            v = None if pd.isna(version) else int(version)
            if (name, v) not in offline:
                offline[(name, v)] = offline_score(name, v, task, client=c)
            key, score = offline[(name, v)]
            live = _metrics(group, task, notes)
            rows.append(
                {
                    "window_start": pd.Timestamp(int(start), unit="ms", tz="UTC"),
                    "model_name": name,
                    "model_version": v,
                    "variants": ",".join(sorted(set(group["variant"]))),
                    "n_labelled": len(group),
                    **live,
                    "offline_metric": key,
                    "offline_score": score,
                    "decay": _decay(live[primary], score, lower_is_better),
                }
            )
    if any(r["offline_metric"] is None for r in rows):
        notes.add(
            f"no offline score for some versions: their runs logged none of "
            f"{', '.join(PRIMARY[task][2])}"
        )
    metric_cols = ["mse", "mae", "r2"] if task == "regression" else ["accuracy", "f1", "roc_auc"]
    columns = [
        "window_start",
        "model_name",
        "model_version",
        "variants",
        "n_labelled",
        *metric_cols,
        "offline_metric",
        "offline_score",
        "decay",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["model_version"] = frame["model_version"].astype("Int64")
    return Performance(str(deployment), task, window_ms, frame, sorted(notes))


__all__ = ["Performance", "infer_task", "offline_score", "over_time", "parse_window"]
