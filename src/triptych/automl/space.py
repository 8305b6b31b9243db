"""The search space: preprocessing x estimators, as Optuna suggestions and scikit-learn pipelines.

A configuration is a flat dict of Optuna parameters: ``estimator`` (a categorical), then the
parameters that estimator takes, prefixed with its short name (``ridge.alpha``,
``hgb.learning_rate``…), and for linear models ``expansion`` (``none``, ``poly2``,
``spline``) when the data is small. :func:`build` turns a configuration into an unfitted
:class:`sklearn.pipeline.Pipeline` (:mod:`triptych.automl.estimators`). Every class used is one
that ``triptych.load_model`` trusts by default, so the final model loads without opt-ins
(LightGBM and XGBoost join the space only when installed *and* trusted through
``TRIPTYCH_TRUSTED_TYPES``).

Each configuration has a **complexity rank** for the one-standard-error rule: the baseline 0,
linear 1 < k-nearest neighbours 2 < SVM 3 < forests 4 < boosting 5, plus 1 for an expansion.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from triptych.errors import InvalidInput

SMALL_ROWS = 5000  # below: SVMs and (with few numeric columns) polynomial/spline expansions
EXPANSION_MAX_NUMERIC = 30

COMPLEXITY = {"linear": 1, "neighbors": 2, "svm": 3, "forest": 4, "boosting": 5}


@dataclass(frozen=True)
class EstimatorSpec:
    name: str
    family: str
    tasks: tuple[str, ...]
    small_only: bool = False
    package: str | None = None  # an optional dependency: in the space only when importable


ESTIMATORS: dict[str, EstimatorSpec] = {
    s.name: s
    for s in (
        EstimatorSpec("ridge_cv", "linear", ("regression",)),
        EstimatorSpec("ridge", "linear", ("regression",)),
        EstimatorSpec("lasso", "linear", ("regression",)),
        EstimatorSpec("lasso_cv", "linear", ("regression",)),
        EstimatorSpec("elastic_net", "linear", ("regression",)),
        EstimatorSpec("bayesian_ridge", "linear", ("regression",)),
        EstimatorSpec("lasso_lars_ic", "linear", ("regression",)),
        EstimatorSpec("logistic", "linear", ("classification",)),
        EstimatorSpec("knn", "neighbors", ("regression", "classification")),
        EstimatorSpec("svm", "svm", ("regression", "classification"), small_only=True),
        EstimatorSpec("random_forest", "forest", ("regression", "classification")),
        EstimatorSpec("extra_trees", "forest", ("regression", "classification")),
        EstimatorSpec("hist_gradient_boosting", "boosting", ("regression", "classification")),
        EstimatorSpec(
            "lightgbm",
            "boosting",
            ("regression", "classification"),
            package="lightgbm",
        ),
        EstimatorSpec(
            "xgboost",
            "boosting",
            ("regression",),
            package="xgboost",
        ),
    )
}
BASELINE = {"regression": "ridge_cv", "classification": "logistic"}


@dataclass(frozen=True)
class Context:
    """What the space depends on: the task, the columns, the data size and the seed.

    Plain data (JSON round trip with :meth:`to_dict`), so worker processes and Ray tasks
    build exactly the pipelines the driver would."""

    task: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    n_rows: int
    min_train_rows: int  # the smallest training part of a CV split (bounds kNN's k)
    seed: int
    estimators: tuple[str, ...]  # the choices of the ``estimator`` parameter, baseline first
    expansions: tuple[str, ...]  # ("none",) or ("none", "poly2", "spline")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        return cls(
            task=str(data["task"]),
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            n_rows=int(data["n_rows"]),
            min_train_rows=int(data["min_train_rows"]),
            seed=int(data["seed"]),
            estimators=tuple(data["estimators"]),
            expansions=tuple(data["expansions"]),
        )

    def digest(self) -> str:
        """Short digest of the space's shape (part of the default study name)."""
        text = json.dumps([self.estimators, self.expansions], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def available(task: str, n_rows: int) -> list[str]:
    """Estimators usable for ``task`` on ``n_rows`` rows in this environment."""
    names = []
    for spec in ESTIMATORS.values():
        if task not in spec.tasks or (spec.small_only and n_rows >= SMALL_ROWS):
            continue
        if spec.package is not None and not _usable(spec):
            continue
        names.append(spec.name)
    return names


def _usable(spec: EstimatorSpec) -> bool:
    """Installed, and its fitted models load under the trust policy (checked on a tiny model:
    what a saved model holds is more than its class — LightGBM's holds its Booster)."""
    import importlib.util

    if spec.package is None or importlib.util.find_spec(spec.package) is None:
        return False
    from triptych import config

    return _package_loadable(spec.name, config.resolve().trusted_types or "")


@functools.lru_cache(maxsize=8)
def _package_loadable(name: str, trusted: str) -> bool:
    from triptych.models.trust import TrustPolicy

    policy = TrustPolicy.current(settings=None)
    if not _names_package(policy, name):
        # its estimator classes live in the package, and nothing trusts the package's names
        # by default: no need to import it and fit a model to know (that took 1.8 s of a
        # fresh process, a sixth of a 10 s budget)
        return False
    import numpy as np
    import skops.io as sio

    from triptych.automl.estimators import probe

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    for model, y in probe(name, X):
        untrusted = sio.get_untrusted_types(data=sio.dumps(model.fit(X, y)))
        if policy.split(untrusted)[1]:
            return False
    return True


def _names_package(policy: Any, package: str) -> bool:
    """Whether the operator's trust entries name anything in ``package`` (``package.*``, an
    enclosing prefix, or one of its names)."""

    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return any(under(e, package) for e in policy.exact) or any(
        under(p, package) or under(package, p) for p in policy.prefixes
    )


def make_context(
    task: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    n_rows: int,
    min_train_rows: int,
    seed: int,
    estimators: Sequence[str] | None = None,
) -> Context:
    """The space for this data; ``estimators`` restricts it (the baseline always stays)."""
    usable = available(task, n_rows)
    if estimators is None:
        chosen = usable
    else:
        if isinstance(estimators, str):
            estimators = [estimators]
        unknown = [e for e in estimators if e not in usable]
        if unknown:
            raise InvalidInput(
                f"estimator(s) not available for {task} here: {', '.join(map(str, unknown))}",
                hint=f"choose from: {', '.join(usable)}",
            )
        chosen = [BASELINE[task], *(e for e in usable if e in estimators)]
    ordered = [BASELINE[task], *(e for e in chosen if e != BASELINE[task])]
    small = n_rows < SMALL_ROWS and 0 < len(numeric) < EXPANSION_MAX_NUMERIC
    expansions = ("none", "poly2", *(("spline",) if spline_loadable() else ())) if small else ()
    return Context(
        task=task,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        n_rows=n_rows,
        min_train_rows=min_train_rows,
        seed=seed,
        estimators=tuple(dict.fromkeys(ordered)),
        expansions=expansions or ("none",),
    )


def spline_loadable() -> bool:
    """Whether a fitted SplineTransformer saved with skops loads under the trust policy.

    With recent scipy (1.17) its B-splines keep a reference to an array-API ``asarray`` function,
    which the default policy (no functions) refuses; a spline expansion is then left out of
    the space rather than producing a model ``triptych.load_model`` would refuse. Trusting
    that name (``TRIPTYCH_TRUSTED_TYPES``) brings it back."""
    from triptych import config

    return _spline_loadable(config.resolve().trusted_types or "")


@functools.lru_cache(maxsize=8)
def _spline_loadable(trusted: str) -> bool:
    import numpy as np
    import skops.io as sio
    from sklearn.preprocessing import SplineTransformer

    from triptych.models.trust import TrustPolicy

    fitted = SplineTransformer(n_knots=3).fit(np.linspace(0.0, 1.0, 20).reshape(-1, 2))
    untrusted = sio.get_untrusted_types(data=sio.dumps(fitted))
    return not TrustPolicy.current(settings=None).split(untrusted)[1]


# -- suggesting ----------------------------------------------------------------------------------
def suggest(trial: Any, ctx: Context) -> dict[str, Any]:
    """Ask ``trial`` for a configuration (conditional parameters) and return it."""
    name = trial.suggest_categorical("estimator", list(ctx.estimators))
    spec = ESTIMATORS[name]
    if spec.family == "linear" and len(ctx.expansions) > 1:
        expansion = trial.suggest_categorical("expansion", list(ctx.expansions))
        if expansion == "spline":
            trial.suggest_int("spline.n_knots", 3, 8)
    _SUGGEST[name](trial, ctx)
    return dict(trial.params)


def _nothing(trial: Any, ctx: Context) -> None:
    return None


def _ridge(trial: Any, ctx: Context) -> None:
    trial.suggest_float("ridge.alpha", 1e-3, 1e3, log=True)


def _lasso(trial: Any, ctx: Context) -> None:
    trial.suggest_float("lasso.alpha", 1e-4, 1e2, log=True)


def _elastic_net(trial: Any, ctx: Context) -> None:
    trial.suggest_float("enet.alpha", 1e-4, 1e2, log=True)
    trial.suggest_float("enet.l1_ratio", 0.05, 0.95)


def _lars_ic(trial: Any, ctx: Context) -> None:
    trial.suggest_categorical("lars_ic.criterion", ["aic", "bic"])


def _logistic(trial: Any, ctx: Context) -> None:
    trial.suggest_float("logistic.C", 1e-3, 1e3, log=True)


def _knn(trial: Any, ctx: Context) -> None:
    trial.suggest_int("knn.n_neighbors", 1, max(1, min(50, ctx.min_train_rows - 1)), log=True)
    trial.suggest_categorical("knn.weights", ["uniform", "distance"])


def _svm(trial: Any, ctx: Context) -> None:
    trial.suggest_float("svm.C", 1e-2, 1e3, log=True)
    trial.suggest_float("svm.gamma", 1e-4, 1.0, log=True)
    if ctx.task == "regression":
        trial.suggest_float("svm.epsilon", 1e-3, 1.0, log=True)


def _forest(prefix: str) -> Any:
    def suggest_forest(trial: Any, ctx: Context) -> None:
        trial.suggest_int(f"{prefix}.n_estimators", 50, 300, step=50)
        trial.suggest_float(f"{prefix}.max_features", 0.2, 1.0)
        trial.suggest_int(f"{prefix}.min_samples_leaf", 1, 20, log=True)

    return suggest_forest


def _hgb(trial: Any, ctx: Context) -> None:
    trial.suggest_float("hgb.learning_rate", 0.01, 0.3, log=True)
    trial.suggest_int("hgb.max_iter", 50, 500, log=True)
    trial.suggest_int("hgb.max_leaf_nodes", 7, 63, log=True)
    trial.suggest_int("hgb.min_samples_leaf", 5, 100, log=True)
    trial.suggest_float("hgb.l2_regularization", 1e-4, 10.0, log=True)


def _lightgbm(trial: Any, ctx: Context) -> None:
    trial.suggest_int("lgbm.n_estimators", 50, 500, log=True)
    trial.suggest_float("lgbm.learning_rate", 0.01, 0.3, log=True)
    trial.suggest_int("lgbm.num_leaves", 7, 63, log=True)
    trial.suggest_int("lgbm.min_child_samples", 5, 100, log=True)
    trial.suggest_float("lgbm.reg_lambda", 1e-4, 10.0, log=True)
    trial.suggest_float("lgbm.colsample_bytree", 0.5, 1.0)


def _xgboost(trial: Any, ctx: Context) -> None:
    trial.suggest_int("xgb.n_estimators", 50, 500, log=True)
    trial.suggest_float("xgb.learning_rate", 0.01, 0.3, log=True)
    trial.suggest_int("xgb.max_depth", 2, 10)
    trial.suggest_float("xgb.min_child_weight", 1.0, 20.0, log=True)
    trial.suggest_float("xgb.subsample", 0.5, 1.0)
    trial.suggest_float("xgb.reg_lambda", 1e-4, 10.0, log=True)


_SUGGEST: dict[str, Any] = {
    "ridge_cv": _nothing,
    "ridge": _ridge,
    "lasso": _lasso,
    "lasso_cv": _nothing,
    "elastic_net": _elastic_net,
    "bayesian_ridge": _nothing,
    "lasso_lars_ic": _lars_ic,
    "logistic": _logistic,
    "knn": _knn,
    "svm": _svm,
    "random_forest": _forest("rf"),
    "extra_trees": _forest("et"),
    "hist_gradient_boosting": _hgb,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}


# -- warm starts ---------------------------------------------------------------------------------
def defaults(ctx: Context) -> list[dict[str, Any]]:
    """The configurations evaluated first, in order: the strong simple baseline (a scaled,
    regularised linear model), then well-known defaults — warm starts, not tuned values."""
    expand = len(ctx.expansions) > 1
    lin = {"expansion": "none"} if expand else {}
    hgb = {
        "estimator": "hist_gradient_boosting",
        "hgb.learning_rate": 0.1,
        "hgb.max_iter": 100,
        "hgb.max_leaf_nodes": 31,
        "hgb.min_samples_leaf": 20,
        "hgb.l2_regularization": 1e-4,
    }
    forest = {
        "estimator": "random_forest",
        "rf.n_estimators": 100,
        "rf.max_features": 1.0 if ctx.task == "regression" else 0.3,
        "rf.min_samples_leaf": 1,
    }
    configs: list[dict[str, Any]]
    if ctx.task == "regression":
        configs = [
            {"estimator": "ridge_cv", **lin},
            {"estimator": "bayesian_ridge", **lin},
            {"estimator": "lasso_lars_ic", **lin, "lars_ic.criterion": "bic"},
            {"estimator": "lasso_cv", **lin},
        ]
        if expand:
            configs += [
                {"estimator": "lasso_cv", "expansion": "poly2"},
                {"estimator": "ridge_cv", "expansion": "spline", "spline.n_knots": 4},
            ]
        configs += [hgb, forest]
    else:
        configs = [
            {"estimator": "logistic", **lin, "logistic.C": 1.0},
            hgb,
            forest,
            {"estimator": "svm", "svm.C": 1.0, "svm.gamma": _gamma_scale(ctx)},
        ]
        if expand:
            configs.append(
                {
                    "estimator": "logistic",
                    "expansion": "spline",
                    "spline.n_knots": 4,
                    "logistic.C": 1.0,
                }
            )
    return [
        c
        for c in configs
        if c["estimator"] in ctx.estimators and c.get("expansion", "none") in ctx.expansions
    ]


def _gamma_scale(ctx: Context) -> float:
    """scikit-learn's ``gamma="scale"`` for standardised columns: 1 / number of features."""
    width = max(1, len(ctx.numeric) + 2 * len(ctx.categorical))
    return min(1.0, max(1e-4, 1.0 / width))


# -- describing ----------------------------------------------------------------------------------
def is_baseline(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is the baseline of its task (trial 0 of every new study)."""
    if params.get("expansion", "none") != "none":
        return False
    if params.get("estimator") == BASELINE["regression"]:
        return True
    return params.get("estimator") == BASELINE["classification"] and params.get("logistic.C") == 1.0


def complexity(params: Mapping[str, Any]) -> int:
    """The rank the one-SE rule minimises; the baseline is 0, the simplest by definition, so
    the search has to beat it by more than a standard error to displace it."""
    if is_baseline(params):
        return 0
    spec = ESTIMATORS.get(str(params.get("estimator")))
    rank = COMPLEXITY[spec.family] if spec else max(COMPLEXITY.values())
    return rank + (1 if params.get("expansion", "none") != "none" else 0)


def preprocessing(params: Mapping[str, Any], ctx: Context) -> str:
    """A short name of the preprocessing, e.g. ``impute+scale+spline(4); onehot``."""
    parts = []
    if ctx.numeric:
        text = "impute+scale"
        expansion = params.get("expansion", "none")
        if expansion == "poly2":
            text += "+poly2"
        elif expansion == "spline":
            text += f"+spline({params.get('spline.n_knots')})"
        parts.append(text)
    if ctx.categorical:
        parts.append("onehot")
    return "; ".join(parts)


def estimator_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration without ``estimator`` and ``expansion`` (the leaderboard's params)."""
    return {k: v for k, v in params.items() if k not in ("estimator", "expansion")}


def build(params: Mapping[str, Any], ctx: Context) -> Any:
    """An unfitted pipeline for ``params`` (see :mod:`triptych.automl.estimators`)."""
    from triptych.automl.estimators import pipeline

    return pipeline(params, ctx)
