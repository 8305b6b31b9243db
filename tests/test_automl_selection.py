"""triptych.automl.selection: how the final model is chosen from the trials, on hand-made
out-of-fold predictions whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from triptych.automl import ensemble, metrics, search, selection

LOG_LOSS = metrics.get("classification", "log_loss")
MSE = metrics.get("regression", "mse")
CLASSES = np.array([0, 1, 2])


def _data(rows: int, folds: int = 5) -> search.Data:
    y = np.arange(rows) % 3
    return search.Data(None, y, np.arange(rows) % folds, CLASSES)


def _proba(y: np.ndarray, right: float) -> np.ndarray:
    """Every row gets ``right`` on its own class and the rest shared by the others."""
    p = np.full((len(y), 3), (1 - right) / 2)
    p[np.arange(len(y)), y] = right
    return p


def test_a_confident_model_pays_for_the_rows_a_small_sample_does_not_hold() -> None:
    small = _data(100)
    baseline = _proba(small.y, 0.9)  # log loss 0.105; its least likely class gets 0.05
    sharp = _proba(small.y, 0.999)  # log loss 0.001, but rules a class out at 0.0005
    better = _proba(small.y, 0.95)  # log loss 0.051 and no more confident than it needs

    # the sharp model wins every fold, yet one unseen row labelled with the class it rules out
    # costs -log(0.0005) = 7.6: at the rule-of-three rate that outweighs its gain on 100 rows
    assert ensemble.clearly_better(
        selection.fold_losses(LOG_LOSS, small, baseline),
        selection.fold_losses(LOG_LOSS, small, sharp),
    )
    assert not selection.displaces(LOG_LOSS, small, baseline, sharp)
    assert selection.displaces(LOG_LOSS, small, baseline, better)
    # on 10,000 rows the same confidence is earned: the unseen rows' share fades as 3/n
    large = _data(10_000)
    assert selection.displaces(LOG_LOSS, large, _proba(large.y, 0.9), _proba(large.y, 0.999))
    # the price only exists for an unbounded loss: squared error has none
    assert not MSE.unbounded and LOG_LOSS.unbounded
    assert ensemble.pessimistic_gain(0.2, 0.1, 3.0, 100) == pytest.approx((10 - 9) / 103)


def _three(rows: int, right: float, runner_up: float) -> np.ndarray:
    """``right`` on each row's class, ``runner_up`` on the next class, the rest on the third."""
    y = np.arange(rows) % 3
    p = np.full((rows, 3), 1 - right - runner_up)
    p[np.arange(rows), y] = right
    p[np.arange(rows), (y + 1) % 3] = runner_up
    return p


def test_the_unseen_rows_are_priced_against_the_baseline_on_the_same_row() -> None:
    data = _data(60)
    baseline = _three(60, 0.9, 0.095)  # log loss 0.105; rules the third class out at 0.005
    # as firm as the baseline on the class both rule out, but 19 times firmer on the runner-up
    # class, where a mistake is plausible: a row labelled with it costs it 2.9 nats more than
    # the baseline, and at the rule-of-three rate (3 rows in 63) that outweighs its gain of
    # 0.095 a row on 60 rows (on wine, such an SVM won every fold and lost 0.15 on the test)
    overconfident = _three(60, 0.99, 0.005)
    assert LOG_LOSS.regret is not None
    assert LOG_LOSS.regret(baseline, overconfident) == pytest.approx(np.log(0.095 / 0.005))
    assert ensemble.clearly_better(
        selection.fold_losses(LOG_LOSS, data, baseline),
        selection.fold_losses(LOG_LOSS, data, overconfident),
        selection.UNBOUNDED_ERRORS,
    )
    assert not selection.displaces(LOG_LOSS, data, baseline, overconfident)
    # sharper too, but never much firmer than the baseline against any class: it wins
    better = _three(60, 0.97, 0.025)
    assert selection.displaces(LOG_LOSS, data, baseline, better)
    # through choose: the overconfident trial has the best CV mean and is not the final model
    from triptych.automl import space

    ctx = space.make_context("classification", ["a"], [], 60, 48, 0)
    baseline_params = {"estimator": "logistic", "logistic.C": 1.0}
    svm = {"estimator": "svm", "svm.C": 1.0, "svm.gamma": 0.1}
    trials = _trials(data, [(baseline_params, baseline), (svm, overconfident)])
    choice = selection.choose(trials, ctx, data, LOG_LOSS)
    assert trials[1].value < trials[0].value
    assert choice.members == {0: 1.0} and choice.kept_baseline
    trials = _trials(data, [(baseline_params, baseline), (svm, better)])
    assert selection.choose(trials, ctx, data, LOG_LOSS).members == {1: 1.0}


def test_what_a_challenger_can_lose_on_a_row_is_bounded_by_how_much_baseline_it_keeps() -> None:
    rng = np.random.default_rng(0)
    incumbent = rng.dirichlet(np.ones(3), 50)
    challenger = rng.dirichlet(np.ones(3) * 0.05, 50)  # near-certain, often wrong
    assert LOG_LOSS.regret is not None
    assert LOG_LOSS.regret(incumbent, incumbent) == pytest.approx(0.0, abs=1e-12)
    assert LOG_LOSS.regret(incumbent, challenger) > 0
    for keep in (0.25, 0.5, 0.9):
        blend = keep * incumbent + (1 - keep) * challenger
        assert LOG_LOSS.regret(incumbent, blend) <= np.log(1 / keep) + 1e-12


def test_cross_fitted_weights_never_see_the_fold_they_predict() -> None:
    rng = np.random.default_rng(0)
    data = _data(60)
    truth = data.y.astype(float)
    predictions = [truth + rng.normal(0, s, len(truth)) for s in (0.3, 0.5, 0.8)]
    crossed = selection.cross_fitted(MSE, data, predictions)

    # change the labels of fold 0 only: fold 0's predictions stay, the others' may move
    changed = search.Data(None, np.where(data.fold == 0, -data.y, data.y), data.fold, CLASSES)
    again = selection.cross_fitted(MSE, changed, predictions)
    fold0 = data.fold == 0
    assert np.array_equal(crossed[fold0], again[fold0])
    assert not np.array_equal(crossed[~fold0], again[~fold0])
    # each row is a weighted mean of the members' predictions for it
    low = np.min(predictions, axis=0)
    high = np.max(predictions, axis=0)
    assert np.all(crossed >= low - 1e-12) and np.all(crossed <= high + 1e-12)


def _trial(
    number: int,
    value: float | None,
    scores: list[float],
    duration: float,
    estimator: str,
    state: TrialState = TrialState.COMPLETE,
) -> FrozenTrial:
    trial = create_trial(
        params={"estimator": estimator, "x": float(number)},
        distributions={
            "estimator": CategoricalDistribution(["ridge", "knn", "svm"]),
            "x": FloatDistribution(0, 100),
        },
        value=value,
        user_attrs={
            search.ATTR: {"fold_scores": scores, "duration": duration},
            search.OOF_ATTR: "",
        },
        state=state,
    )
    trial.number = number
    return trial


def test_the_search_keeps_time_to_refit_what_the_final_model_may_hold() -> None:
    trials = [
        _trial(0, 100.0, [90.0, 110.0, 100.0, 95.0, 105.0], 4.0, "ridge"),
        _trial(1, 101.0, [91.0, 111.0, 101.0, 96.0, 106.0], 2.0, "knn"),
        _trial(2, 102.0, [92.0, 112.0, 102.0, 97.0, 107.0], 9.0, "ridge"),  # ridge again
        _trial(3, 500.0, [500.0] * 5, 40.0, "svm"),  # far from the best: never chosen
    ]
    # the best of each family within one SE (trials 0 and 1); each trial fitted 5 models on
    # 4/5 of the rows, so a refit on all rows takes about a quarter of a trial, and saving the
    # refitted model a share of that again
    refit = (4.0 + 2.0) / 4
    assert selection.refit_seconds(trials, "minimize", 5) == pytest.approx(
        refit * (1 + search.SAVE_PER_FIT)
    )
    assert selection.refit_seconds([], "minimize", 5) == 0.0


def test_the_search_keeps_in_hand_the_longest_fold_pruned_trials_included() -> None:
    """A slow configuration stopped after one fold still says how long the next one like it
    may run past the deadline; the time kept must count it."""
    complete = _trial(0, 100.0, [100.0] * 5, 5.0, "ridge")  # 1 s a fold
    assert selection.longest_fold_seconds([complete], 5) == pytest.approx(1.0)
    slow = _trial(1, None, [120.0], 3.0, "svm", state=TrialState.PRUNED)  # 3 s for one fold
    assert selection.longest_fold_seconds([complete, slow], 5) == pytest.approx(3.0)
    failed = _trial(2, None, [], 60.0, "knn", state=TrialState.FAIL)  # no fold ended
    assert selection.longest_fold_seconds([complete, slow, failed], 5) == pytest.approx(3.0)
    assert selection.longest_fold_seconds([], 5) == 0.0


def _classifier_trials(data: search.Data) -> list[FrozenTrial]:
    """The baseline and an SVM that are each right on half the rows where the other hesitates:
    their average is better than either on every fold."""
    even = np.arange(len(data.y)) % 2 == 0
    a = np.where(even[:, None], _proba(data.y, 0.9), _proba(data.y, 0.4))
    b = np.where(even[:, None], _proba(data.y, 0.4), _proba(data.y, 0.9))
    return _trials(
        data,
        [
            ({"estimator": "logistic", "logistic.C": 1.0}, a),
            ({"estimator": "svm", "svm.C": 1.0, "svm.gamma": 0.1}, b),
        ],
    )


def _trials(
    data: search.Data, configs: list[tuple[dict[str, object], np.ndarray]]
) -> list[FrozenTrial]:
    """Complete trials with these out-of-fold predictions, numbered in order."""
    trials = []
    for number, (params, oof) in enumerate(configs):
        scores = selection.fold_losses(LOG_LOSS, data, oof)
        trial = create_trial(
            params=params,
            distributions={k: _distribution(v) for k, v in params.items()},
            value=float(np.mean(scores)),
            user_attrs={
                search.ATTR: {"fold_scores": scores, "duration": 1.0},
                search.OOF_ATTR: search.encode_oof(oof),
            },
            state=TrialState.COMPLETE,
        )
        trial.number = number
        trials.append(trial)
    return trials


def _distribution(value: object) -> CategoricalDistribution | FloatDistribution:
    if isinstance(value, str):
        return CategoricalDistribution(["logistic", "svm"])
    return FloatDistribution(1e-3, 1e3, log=True)


@pytest.mark.parametrize(("rows", "kind"), [(300, "single"), (1200, "ensemble")])
def test_log_loss_blends_models_only_from_a_thousand_rows(rows: int, kind: str) -> None:
    from triptych.automl import space

    data = _data(rows)
    ctx = space.make_context("classification", ["a"], [], rows, rows * 4 // 5, 0)
    choice = selection.choose(_classifier_trials(data), ctx, data, LOG_LOSS)
    assert choice.kind == kind
    if kind == "single":
        assert choice.members == {0: 1.0}  # the baseline
    else:
        assert set(choice.members) == {0, 1} and choice.score < choice.single_score
