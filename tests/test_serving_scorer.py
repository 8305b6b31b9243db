"""How the server calls a model: the cheapest path that gives exactly the model's answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import triptych
from triptych.serving.payload import Rows, parse
from triptych.serving.scorer import Identity, Scorer


def _scorer(estimator: object) -> tuple[Scorer, Any, pd.DataFrame]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = estimator.fit(X, y)  # type: ignore[attr-defined]
    with triptych.start_run():
        info = triptych.log_model(model, "model", input_example=X.head(5))
    loaded = triptych.load_model(info.uri)
    return Scorer(loaded, Identity(info.uri, info.uri)), model, X


@pytest.mark.parametrize("estimator", [Ridge(alpha=0.5), LinearRegression(), Lasso(alpha=0.1)])
def test_a_linear_regressor_is_scored_without_sklearn_and_gives_the_same_numbers(
    estimator: object,
) -> None:
    scorer, model, X = _scorer(estimator)
    assert scorer.numpy_path and scorer._predict.__qualname__.startswith("_linear")
    assert np.array_equal(scorer._predict(X.to_numpy()), model.predict(X))
    assert np.array_equal(scorer._predict(X.to_numpy()[:1]), model.predict(X.head(1)))


def test_other_models_keep_their_own_predict() -> None:
    for estimator in (
        make_pipeline(StandardScaler(), Ridge()),
        RandomForestRegressor(n_estimators=5, random_state=0),
    ):
        scorer, model, X = _scorer(estimator)
        assert not scorer._predict.__qualname__.startswith("_linear")
        answers = scorer.score([_rows(scorer, X.to_numpy()[:3])])[0]
        assert np.allclose(answers, model.predict(X.head(3)))


def _rows(scorer: Scorer, matrix: np.ndarray) -> Rows:
    body = {"columns": list(scorer.columns.names), "data": matrix.tolist()}
    return parse(orjson.dumps(body), scorer.columns)
