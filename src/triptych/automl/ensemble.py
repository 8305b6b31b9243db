"""Choosing the final model: the one-standard-error rule and greedy ensemble selection.

- :func:`one_standard_error`: among the complete trials whose CV mean is within one standard
  error of the best one's (SE = the best trial's fold standard deviation / sqrt(folds)), the
  lowest complexity rank; ties go to the better CV mean. On small data the best CV mean is
  partly luck; a simpler model that is statistically as good generalises at least as well.
- :func:`library`: the candidates of the ensemble — among the trials within one standard
  error of the best (the same band as the one-SE rule: the models the data cannot tell apart
  from the best), the best of each *family* (estimator and expansion), at most 20. Variants of
  one family differ by a hyperparameter and predict almost alike, and a model clearly worse on
  its own earns its weight by fitting the noise of the out-of-fold predictions the selection
  is scored on: neither adds diversity, both add ways to overfit them.
- :func:`greedy_ensemble`: Caruana et al. (2004) ensemble selection, as in auto-sklearn:
  starting from nothing, add (with replacement) the library member whose addition gives the
  best out-of-fold score of the averaged predictions, for a fixed number of rounds; a
  member's weight is how often it was picked.
- :func:`voting`: the ensemble as a plain scikit-learn ``VotingRegressor`` /
  ``VotingClassifier(voting="soft")`` whose members are refit on all the training data, so it
  is saved with skops and loaded by ``triptych.load_model`` like any other estimator.

The rule between the two (:func:`clearly_better`): the ensemble when its out-of-fold loss beats
the one-SE single model's by more than one standard error of their paired fold differences,
else the single model; :func:`pessimistic_gain` prices, for an unbounded loss, the rows a
small sample did not hold (see :mod:`triptych.automl.selection`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

LIBRARY_SIZE = 20
T = TypeVar("T")
ROUNDS = 25
UNSEEN = 3.0  # rows the sample may have missed: the rule of three (95% bound when none seen)


@dataclass(frozen=True)
class Candidate:
    """A complete trial as the one-SE rule sees it."""

    number: int
    cv_mean: float
    cv_std: float
    n_folds: int
    complexity: int


def within_one_se(candidates: Sequence[Candidate], direction: str) -> list[Candidate]:
    """The candidates whose CV mean is within one standard error of the best one's, best
    first: the models the data cannot tell apart from the best."""
    usable = [c for c in candidates if math.isfinite(c.cv_mean)]
    if not usable:
        raise ValueError("no complete trial to choose from")
    sign = 1.0 if direction == "minimize" else -1.0
    usable.sort(key=lambda c: (sign * c.cv_mean, c.number))
    best = usable[0]
    se = best.cv_std / math.sqrt(best.n_folds) if best.n_folds > 0 else 0.0
    bound = sign * best.cv_mean + se
    return [c for c in usable if sign * c.cv_mean <= bound + 1e-12 * abs(bound)]


def one_standard_error(candidates: Sequence[Candidate], direction: str) -> Candidate:
    """The simplest candidate within one standard error of the best CV mean."""
    sign = 1.0 if direction == "minimize" else -1.0
    eligible = within_one_se(candidates, direction)
    return min(eligible, key=lambda c: (c.complexity, sign * c.cv_mean, c.number))


def library(
    ranked: Sequence[T], family: Callable[[T], Hashable], size: int = LIBRARY_SIZE
) -> list[T]:
    """The first (best) of each family in ``ranked`` (ordered best first), at most ``size``."""
    seen: set[Hashable] = set()
    chosen: list[T] = []
    for item in ranked:
        key = family(item)
        if key not in seen:
            seen.add(key)
            chosen.append(item)
    return chosen[:size]


def greedy_ensemble(
    predictions: Sequence[Any],
    y: Any,
    loss: Callable[[Any, Any], float],
    rounds: int = ROUNDS,
) -> list[int]:
    """How many times each of ``predictions`` is picked in ``rounds`` rounds of greedy
    selection with replacement minimising ``loss(y, mean of the picked predictions)``.

    Ties go to the earlier prediction (order the library best first)."""
    import numpy as np

    if not predictions:
        return []
    counts = [0] * len(predictions)
    total = np.zeros_like(np.asarray(predictions[0], dtype=np.float64))
    for r in range(rounds):
        best_i, best_loss = 0, math.inf
        for i, pred in enumerate(predictions):
            value = loss(y, (total + pred) / (r + 1))
            if value < best_loss:
                best_i, best_loss = i, value
        counts[best_i] += 1
        total = total + predictions[best_i]
    return counts


def clearly_better(single: Sequence[float], blended: Sequence[float], errors: float = 1.0) -> bool:
    """Whether the ensemble's fold losses beat the single model's by more than ``errors``
    standard errors of their paired differences (the same folds, so fold difficulty cancels).

    The one-SE rule again: the ensemble is the more complex model, and its weights were
    chosen on these very predictions, so it must win by more than the noise."""
    diffs = [s - b for s, b in zip(single, blended, strict=True)]
    if len(diffs) < 2:
        return False
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return mean > errors * sd / math.sqrt(len(diffs))


def pessimistic_gain(incumbent: float, challenger: float, regret: float, rows: int) -> float:
    """The challenger's mean gain over the incumbent (their losses on ``rows`` observed rows)
    once :data:`UNSEEN` more rows are added on which it loses ``regret`` each (for log loss:
    each labelled with the class it rules out most firmly compared with the incumbent).

    When ``rows`` rows held none of a kind of row, the rule of three puts the 95% upper bound
    of its rate at 3/rows: the guard prices the challenger's extra confidence at that rate,
    which matters on small data and fades as rows grow."""
    return (rows * (incumbent - challenger) - UNSEEN * regret) / (rows + UNSEEN)


def voting(members: Sequence[tuple[str, Any, float]], task: str) -> Any:
    """An unfitted voting ensemble of ``(name, estimator, weight)``."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    estimators = [(name, est) for name, est, _ in members]
    weights = [float(w) for _, _, w in members]
    if task == "regression":
        return VotingRegressor(estimators, weights=weights)
    return VotingClassifier(estimators, voting="soft", weights=weights)


def weights(counts: Sequence[int], numbers: Sequence[int]) -> dict[int, float]:
    """``{trial number: weight}`` of the members picked at least once (weights sum to 1)."""
    total = sum(counts)
    return {n: c / total for n, c in zip(numbers, counts, strict=True) if c > 0} if total else {}


def blend(oofs: Mapping[int, Any], member_weights: Mapping[int, float]) -> Any:
    """The ensemble's out-of-fold prediction."""
    return sum(w * oofs[n] for n, w in member_weights.items())
