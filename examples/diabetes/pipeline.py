"""The reference training pipeline: ingest → validate → split → train → evaluate → register.

    triptych pipeline run examples/diabetes/pipeline.py
    triptych pipeline run examples/diabetes/pipeline.py --param train.alpha=2
    triptych pipeline run examples/diabetes/pipeline.py --param train.method=automl
    triptych pipeline show examples/diabetes/pipeline.py

The same Ridge regression as ``train.py``, as steps: each is a nested run with its inputs,
outputs, parameters (``params.yaml``) and log, cached on its code, parameters, inputs and
environment, so a second run reuses every step and changing ``train.alpha`` re-runs train,
evaluate and register only. The last step is the evaluation gate: the model becomes
``models:/diabetes@champion`` only when it beats the champion on the same holdout.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

import triptych
from triptych.models.model import Model
from triptych.pipelines import pipeline, step
from triptych.store.entities import DatasetVersion

TARGET = "target"


@step
def ingest(name: str = "diabetes", source: str = "sklearn") -> DatasetVersion:
    """``source: sklearn`` registers the bundled data as a dataset version (the same data again
    is the same version); a ``datasets:/NAME@VERSION`` address uses that version instead, as
    the monitoring loop does with the reference data plus labelled live rows."""
    if source != "sklearn":
        return triptych.data.get(source)
    frame = load_diabetes(as_frame=True).frame
    return triptych.data.add(name, frame, description="scikit-learn diabetes")


@step
def validate(
    data: DatasetVersion, max_missing: float = 0.0, psi_threshold: float = 0.2
) -> DatasetVersion:
    """The three data tests: schema, missing values, and shift against the previous version."""
    previous = data.version - 1 if data.version > 1 else data.version
    _, results = triptych.data.check(
        data.name,
        triptych.data.load(data.uri),
        reference=f"{data.name}@{previous}",
        max_missing=max_missing,
        psi_threshold=psi_threshold,
    )
    triptych.log_dict({"checks": [r.to_dict() for r in results]}, "data_tests.json")
    failed = [r for r in results if not r.passed]
    for r in results:
        print(f"{'pass' if r.passed else 'FAIL'} {r.name}: {r.message}")
    if failed:
        raise ValueError(f"{len(failed)} data test(s) failed: {failed[0].message}")
    return data


@step(outputs=("train", "test"))
def split(
    data: pd.DataFrame, test_size: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A recorded 80/20 split (its assignment and digest land in the step run)."""
    parts = triptych.data.split(data, test_size=test_size, seed=seed)
    return parts.train, parts.test


@step
def train(
    train: pd.DataFrame, method: str = "ridge", alpha: float = 0.5, budget_s: float = 30.0
) -> BaseEstimator:
    """``method: ridge`` fits Ridge(alpha); ``method: automl`` searches for ``budget_s``
    seconds (its trials are nested runs of this step's run) and returns the final model."""
    if method == "automl":
        found = triptych.automl.fit(
            train, TARGET, task="regression", metric="mse", budget_s=budget_s, progress=False
        )
        print(f"automl: {found.kind} with CV MSE {found.cv_score:.1f}")
        return found.model
    if method != "ridge":
        raise ValueError(f"train.method must be 'ridge' or 'automl', not {method!r}")
    return Ridge(alpha=alpha).fit(train.drop(columns=TARGET), train[TARGET])


@step
def evaluate(model: Model, test: pd.DataFrame) -> dict[str, Any]:
    mse = float(mean_squared_error(test[TARGET], model.predict(test.drop(columns=TARGET))))
    triptych.log_metric("mse", mse)
    return {"mse": mse}


@step
def register(
    model: Model, test: pd.DataFrame, scores: dict[str, Any], model_name: str = "diabetes"
) -> dict[str, Any]:
    """Gate: register the model and make it champion only if it beats the current one."""
    run = triptych.active_run()
    assert run is not None  # a step always runs in its own run
    triptych.log_metric("mse", scores["mse"])
    triptych.log_input(test, name="test")  # the holdout the gate compares on
    triptych.log_model(model.raw, "model", input_example=test.drop(columns=TARGET).head(5))
    decision = triptych.registry.gate(run, model_name, metric="mse", holdout=test)
    print(f"gate: {decision.reason}")
    return decision.to_dict()


@pipeline
def diabetes() -> None:
    data = validate(ingest())
    train_set, test_set = split(data)
    model = train(train_set)
    scores = evaluate(model, test_set)
    register(model, test_set, scores)
