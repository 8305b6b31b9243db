"""The diabetes pipeline's automl training option."""

from __future__ import annotations

from pathlib import Path

import pytest

from triptych.errors import StepFailed
from triptych.pipelines import run as run_pipeline
from triptych.tracking.client import Client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "pipeline.py"


def test_the_diabetes_pipeline_trains_with_automl(tmp_path: Path) -> None:
    result = run_pipeline(EXAMPLE, params={"train.method": "automl", "train.budget_s": 4})
    client = Client()
    train = client.get_run(result.steps["train"].run_id)
    assert train.params["method"] == "automl"
    # the search is a child of the train step's run, its trials children of the search
    children = [r for r in client.search_runs().items if r.parent_run_id == train.run_id]
    assert len(children) == 1
    trials = [r for r in client.search_runs().items if r.parent_run_id == children[0].run_id]
    assert len(trials) >= 2
    mse = result.output("evaluate")["mse"]
    assert 2000 < mse < 4500  # a sane regressor on diabetes (the mean predictor scores ~5900)
    assert result.output("register")["candidate"] == pytest.approx(mse)


def test_an_unknown_training_method_fails_the_train_step(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"train\.method must be 'ridge' or 'automl'"):
        run_pipeline(EXAMPLE, params={"train.method": "xgb"})
