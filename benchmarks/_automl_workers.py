"""The AutoML benchmark's workers: one fit of one split, in a process of its own.

``benchmarks/automl.py`` copies this file to a temporary folder outside any git checkout and
runs it with the interpreter of the contender (triptych's, or FLAML's own venv), pinned to
``--cpus`` CPUs; the worker prints one ``BENCHMARK-RESULT {json}`` line: the test scores, the
wall time of the ``fit`` call, the tool's CV score and trials, and a digest of the test rows,
so the driver can check that every contender saw the same split.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCHMARK-RESULT "


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "regression" | "classification"
    metrics: tuple[str, ...]  # the first is the primary one: optimised and judged
    lower_is_better: tuple[bool, ...]


DATASETS = {
    "diabetes": Dataset("diabetes", "regression", ("mse",), (True,)),
    "iris": Dataset("iris", "classification", ("log_loss", "accuracy"), (True, False)),
    "wine": Dataset("wine", "classification", ("log_loss", "accuracy"), (True, False)),
    "breast_cancer": Dataset(
        "breast_cancer", "classification", ("log_loss", "accuracy"), (True, False)
    ),
    "digits": Dataset("digits", "classification", ("log_loss", "accuracy"), (True, False)),
}


class BenchmarkError(RuntimeError):
    """A worker failed, or its figures cannot be compared."""


def load_split(name: str, split: int) -> tuple[Any, Any, Any, Any, str]:
    """The training and test parts of split ``split`` (random_state=split, 80/20), and a digest
    of the test rows' positions, so the driver can check every tool saw the same split."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True, as_frame=True)
    X.columns = [str(c).replace(" ", "_") for c in X.columns]
    stratify = y if DATASETS[name].task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=split, stratify=stratify
    )
    digest = hashlib.sha256(",".join(map(str, sorted(X_test.index))).encode()).hexdigest()[:16]
    return X_train, X_test, y_train, y_test, digest


def score(dataset: Dataset, model: Any, X_test: Any, y_test: Any) -> dict[str, float]:
    """Every metric of the dataset, on the test part."""
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

    if dataset.task == "regression":
        return {"mse": float(mean_squared_error(y_test, model.predict(X_test)))}
    proba = model.predict_proba(X_test)
    return {
        "log_loss": float(log_loss(y_test, proba, labels=list(model.classes_))),
        "accuracy": float(accuracy_score(y_test, model.predict(X_test))),
    }


def worker_baseline(dataset: Dataset, split: int, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test, digest = load_split(dataset.name, split)
    out: dict[str, Any] = {"digest": digest}
    if dataset.task == "regression":
        models = {
            "baseline": make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 50))),
            "ridge": Ridge(alpha=0.5),
        }
    else:
        models = {"baseline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))}
    for key, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, y_train)
        out[key] = {"fit_seconds": time.perf_counter() - start}
        out[key]["scores"] = score(dataset, model, X_test, y_test)
        out[key]["best"] = _describe(model)
    return out


def worker_triptych(dataset: Dataset, split: int, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["TRIPTYCH_HOME"] = str(args.dir / "home")  # before triptych resolves settings
    import triptych.automl

    X_train, X_test, y_train, y_test, digest = load_split(dataset.name, split)
    train = X_train.assign(target=y_train.to_numpy())
    options: dict[str, Any] = {
        "task": dataset.task,
        "metric": dataset.metrics[0],
        "budget_s": args.budget,
        "cv": args.cv,
        "executor": "local",
        "seed": split,
    }
    accepted = inspect.signature(triptych.automl.fit).parameters
    if "progress" in accepted:
        options["progress"] = False
    if "n_jobs" in accepted:
        options["n_jobs"] = args.cpus
    start = time.perf_counter()
    result = triptych.automl.fit(train, "target", **options)
    seconds = time.perf_counter() - start
    leaderboard = result.leaderboard
    return {
        "digest": digest,
        "fit_seconds": seconds,
        "scores": score(dataset, result.model, X_test, y_test),
        "cv_score": _float(getattr(result, "cv_score", None)),
        "trials": _length(leaderboard),
        "best": _triptych_pick(result),
        "model": _describe(result.model),
        "version": triptych.__version__,
        "source": _source_digest(Path(triptych.automl.__file__).parent),
        "imported_from": str(Path(triptych.__file__).parent),
        "options": {k: v for k, v in options.items() if k != "seed"},
    }


def worker_flaml(dataset: Dataset, split: int, args: argparse.Namespace) -> dict[str, Any]:
    import flaml
    from flaml import AutoML

    X_train, X_test, y_train, y_test, digest = load_split(dataset.name, split)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(
        X_train,
        y_train,
        task=dataset.task,
        metric=dataset.metrics[0],
        time_budget=args.budget,
        seed=split,
        n_jobs=args.cpus,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    return {
        "digest": digest,
        "fit_seconds": seconds,
        "scores": score(dataset, automl, X_test, y_test),
        "cv_score": _float(automl.best_loss),  # FLAML's loss: MSE, or log loss
        "trials": len(automl.config_history),
        "best": automl.best_estimator,
        "version": flaml.__version__,
    }


def _source_digest(folder: Path) -> str:
    """A digest of the AutoML package's source, to tell fits made by different code apart."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _triptych_pick(result: Any) -> str:
    """``ridge``, or ``ensemble(ridge+svm)`` with the members' estimators."""
    best = getattr(result, "best", None) or {}
    single = str(best.get("estimator") or _describe(result.model))
    members = getattr(result, "members", None) or {}
    if getattr(result, "kind", "single") != "ensemble" or len(members) < 2:
        return single
    board = result.leaderboard
    try:
        names = {int(n): str(e) for n, e in zip(board["number"], board["estimator"], strict=True)}
    except (KeyError, TypeError, ValueError):
        return f"ensemble of {len(members)}"
    return "ensemble(" + "+".join(sorted({names.get(int(n), "?") for n in members})) + ")"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _length(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _describe(model: Any) -> str:
    """The class names along a fitted pipeline, e.g. ``StandardScaler>Ridge``."""
    steps = getattr(model, "steps", None)
    if steps:
        return ">".join(_describe(step) for _, step in steps)
    return type(model).__name__


WORKERS = {"baseline": worker_baseline, "triptych": worker_triptych, "flaml": worker_flaml}


def worker_main(args: argparse.Namespace) -> None:
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(available[: args.cpus]))
    result = WORKERS[args.worker](DATASETS[args.dataset], args.split, args)
    print(RESULT_MARKER + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one fit of the AutoML benchmark")
    parser.add_argument("--worker", choices=sorted(WORKERS), required=True)
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--split", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--cv", type=int, required=True)
    worker_main(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
