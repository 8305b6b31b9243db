"""AutoML: search preprocessing x estimators with Optuna, never worse than a simple baseline.

    result = triptych.automl.fit(df, "target", task="regression", budget_s=60)
    result.model.predict(x)        # a fitted scikit-learn estimator
    result.leaderboard             # one row per trial
    result.score(x_test, y_test)   # held-out score, logged on result.run_id

Light to import: Optuna, scikit-learn and pandas are imported when ``fit`` runs. See
docs/automl.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["AutoMLResult", "fit", "greedy_ensemble", "one_standard_error"]

_EXPORTS = {
    "fit": "triptych.automl.runner",
    "AutoMLResult": "triptych.automl.result",
    "greedy_ensemble": "triptych.automl.ensemble",
    "one_standard_error": "triptych.automl.ensemble",
}

if TYPE_CHECKING:
    from triptych.automl.ensemble import greedy_ensemble, one_standard_error
    from triptych.automl.result import AutoMLResult
    from triptych.automl.runner import fit


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'triptych.automl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
