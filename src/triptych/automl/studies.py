"""Creating, loading and checking the Optuna study of a search.

The sampler is multivariate TPE with ``group=True`` (the space is conditional: each estimator
has its own parameters, and grouping models them jointly per estimator) and the constant
liar (parallel workers do not all sample next to the same running trial). The pruner stops
*hopeless* trials: from the second fold on, a trial whose running CV mean is worse than the
75th percentile of the earlier trials' at the same fold (after 5 trials). The median rule
would also stop half of the merely average trials, which on small data differ mostly by
fold noise and are still useful members of the ensemble.
"""

from __future__ import annotations

import warnings
from typing import Any

from triptych.errors import Conflict

ATTR = "triptych"  # study user attribute: what the study's trials were computed on


def sampler(seed: int) -> Any:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # group= (and constant_liar= in 4.x)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, seed=seed
        )


def pruner() -> Any:
    import optuna

    return optuna.pruners.PercentilePruner(75.0, n_startup_trials=5, n_warmup_steps=1)


def open_study(storage: Any, name: str, direction: str, seed: int) -> Any:
    """Create the study, or load it when it exists (``load_if_exists``)."""
    import optuna

    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be minimize or maximize, not {direction!r}")
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="minimize" if direction == "minimize" else "maximize",
        sampler=sampler(seed),
        pruner=pruner(),
        load_if_exists=True,
    )


def load_study(storage: Any, name: str, seed: int) -> Any:
    import optuna

    return optuna.load_study(
        study_name=name, storage=storage, sampler=sampler(seed), pruner=pruner()
    )


def claim(study: Any, identity: dict[str, Any]) -> bool:
    """Check that an existing study was computed on the same data, task, metric, folds and
    space (its out-of-fold predictions are only comparable then), or mark a new one as ours.
    Returns True for a new study. Raises Conflict otherwise."""
    recorded = study.user_attrs.get(ATTR)
    if recorded is None:
        if study.get_trials(deepcopy=False):
            raise Conflict(
                f"study {study.study_name!r} exists and was not made by triptych automl",
                hint="pass another study_name",
            )
        study.set_user_attr(ATTR, identity)
        return True
    different = sorted(k for k, v in identity.items() if recorded.get(k) != v)
    if different:
        raise Conflict(
            f"study {study.study_name!r} was run with other {', '.join(different)}; its trials "
            "cannot be continued with these",
            hint="pass another study_name (the default is derived from the data and settings)",
        )
    return False
