"""The evaluation gate: first model, better, worse, equal, missing metric, other holdouts."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

import triptych
from triptych.errors import InvalidInput


@pytest.fixture
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


def _train(
    data: pd.DataFrame, alpha: float, seed: int = 0, log_metric: bool = True
) -> tuple[str, pd.DataFrame]:
    """A run that trains Ridge(alpha) on a recorded split; returns its id and holdout."""
    with triptych.start_run(experiment="gate") as run:
        split = triptych.data.split(data, test_size=0.2, seed=seed)
        x, y = split.train.drop(columns="target"), split.train["target"]
        model = Ridge(alpha=alpha).fit(x, y)
        if log_metric:
            mse = mean_squared_error(
                split.test["target"], model.predict(split.test.drop(columns="target"))
            )
            triptych.log_metric("mse", mse)
        triptych.log_model(model, "model", input_example=x.head(3))
    return run.run_id, split.test


def test_first_better_worse_equal(diabetes: pd.DataFrame) -> None:
    first, _ = _train(diabetes, 0.5)
    d = triptych.registry.gate(first, "diabetes")
    assert d.passed and d.registered == 1 and "first model" in d.reason
    assert triptych.registry.get("models:/diabetes@champion").version == 1

    worse, _ = _train(diabetes, 5.0)
    d = triptych.registry.gate(worse, "diabetes")
    assert not d.passed and d.registered is None and "does not beat" in d.reason
    assert d.candidate > d.champion  # type: ignore[operator]
    assert triptych.registry.get("models:/diabetes@champion").version == 1  # kept
    assert triptych.Client().get_run(worse).tags["triptych.gate.diabetes"] == "refused"

    same, _ = _train(diabetes, 0.5)  # equal score: equal is not better
    assert not triptych.registry.gate(same, "diabetes").passed

    better, _ = _train(diabetes, 0.4)  # 3295.7 < 3298.9 on this split
    d = triptych.registry.gate(better, "diabetes")
    assert d.passed and d.registered == 2 and d.candidate < d.champion  # type: ignore[operator]
    assert triptych.registry.get("models:/diabetes@champion").run_id == better
    gates = [e for e in triptych.registry.history("diabetes") if e.action == "gate"]
    assert [g.details["passed"] for g in gates] == [True, False, False, True]  # type: ignore[index]
    # the numbers are in the trail: the champion's mse (alpha 0.5 on this split) and the run
    assert gates[1].details["champion"] == pytest.approx(3298.89, abs=0.01)  # type: ignore[index]
    assert gates[1].details["run_id"] == worse  # type: ignore[index]


def test_missing_metric_is_a_refusal_not_a_crash(diabetes: pd.DataFrame) -> None:
    run_id, _ = _train(diabetes, 0.5, log_metric=False)
    d = triptych.registry.gate(run_id, "diabetes")
    assert not d.passed and "no 'mse' metric" in d.reason
    assert triptych.registry.list_models() == []
    with pytest.raises(InvalidInput):
        triptych.registry.gate(run_id, "diabetes", direction="sideways")


def test_other_holdout_rescores_the_champion(diabetes: pd.DataFrame) -> None:
    champion_run, _ = _train(diabetes, 0.5, seed=0)
    triptych.registry.gate(champion_run, "diabetes")
    candidate_run, holdout = _train(diabetes, 0.5, seed=1)  # same model, another split
    refused = triptych.registry.gate(candidate_run, "diabetes")
    assert not refused.passed and "pass holdout=" in refused.reason
    d = triptych.registry.gate(candidate_run, "diabetes", holdout=holdout)
    assert d.rescored and not d.passed  # the same alpha scores the same on the same data
    champion_model = triptych.load_model("models:/diabetes@champion")
    expected = mean_squared_error(
        holdout["target"], champion_model.predict(holdout.drop(columns="target"))
    )
    assert d.champion == pytest.approx(expected)
    with pytest.raises(InvalidInput, match="not the data"):
        triptych.registry.gate(candidate_run, "diabetes", holdout=holdout.head(10))


def test_model_card_tells_where_the_model_came_from(diabetes: pd.DataFrame) -> None:
    triptych.data.add("diabetes", diabetes)
    with triptych.start_run(experiment="card") as run:
        triptych.log_input("datasets:/diabetes@1")
        triptych.log_param("alpha", 0.5)
        split = triptych.data.split(diabetes, test_size=0.2, seed=0)
        model = Ridge(alpha=0.5).fit(split.train.drop(columns="target"), split.train["target"])
        triptych.log_metric("mse", 3298.9)
        triptych.log_model(model, "model", input_example=split.train.drop(columns="target").head(2))
    triptych.registry.gate(run.run_id, "diabetes")
    text = triptych.registry.card("diabetes@champion")
    for expected in (
        "# diabetes — version 1",
        "| mse | 3298.9 |",
        "| alpha | 0.5 |",
        "datasets:/diabetes@1",
        run.run_id,
        "first model: no champion yet",
        "`scikit-learn==",
        "`age` (float)",
        "data `datasets:/diabetes@1` → run",
    ):
        assert expected in text, expected


def test_gate_under_an_approval_policy_asks_instead_of_moving(diabetes: pd.DataFrame) -> None:
    first, _ = _train(diabetes, 0.5)
    triptych.registry.gate(first, "diabetes")
    triptych.registry.set_policy("diabetes", "champion", require_approval=True)
    better, _ = _train(diabetes, 0.4)
    d = triptych.registry.gate(better, "diabetes")
    assert d.passed and d.registered == 2 and "awaits approval" in d.reason
    assert triptych.registry.get("models:/diabetes@champion").version == 1  # not moved yet
    (pending,) = triptych.registry.requests("diabetes", status="pending")
    assert (pending.alias, pending.version) == ("champion", 2)
