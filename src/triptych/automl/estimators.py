"""Configurations as scikit-learn objects: the preprocessing and the estimator of a trial.

Numeric columns: median imputation, standard scaling, then the expansion (``poly2``: degree-2
polynomial features scaled again; ``spline``: cubic B-splines). Categorical columns:
most-frequent imputation and one-hot encoding (at most 20 categories, unseen ones as the rare
group). Every class here is one ``triptych.load_model`` trusts by default (LightGBM and
XGBoost only join the space when trusted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triptych.automl.space import ESTIMATORS, Context
from triptych.errors import InvalidInput

RIDGE_ALPHAS = tuple(10.0 ** (k / 4) for k in range(-12, 13))  # 1e-3 .. 1e3, 25 values


def pipeline(params: Mapping[str, Any], ctx: Context) -> Any:
    """An unfitted pipeline for the configuration ``params``."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("prep", _preprocessor(params, ctx)), ("model", _estimator(params, ctx))])


def _preprocessor(params: Mapping[str, Any], ctx: Context) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        OneHotEncoder,
        PolynomialFeatures,
        SplineTransformer,
        StandardScaler,
    )

    parts = []
    if ctx.numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
        expansion = params.get("expansion", "none")
        if expansion == "poly2":
            steps += [
                ("poly", PolynomialFeatures(degree=2, include_bias=False)),
                ("rescale", StandardScaler()),
            ]
        elif expansion == "spline":
            steps.append(
                ("spline", SplineTransformer(n_knots=int(params["spline.n_knots"]), degree=3))
            )
        parts.append(("num", Pipeline(steps), list(ctx.numeric)))
    if ctx.categorical:
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=20, sparse_output=False
        )
        parts.append(
            (
                "cat",
                Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("onehot", encode)]),
                list(ctx.categorical),
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _estimator(p: Mapping[str, Any], ctx: Context) -> Any:
    name = str(p["estimator"])
    regression = ctx.task == "regression"
    seed = ctx.seed
    if name == "ridge_cv":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=RIDGE_ALPHAS)
    if name == "ridge":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=p["ridge.alpha"])
    if name == "lasso":
        from sklearn.linear_model import Lasso

        return Lasso(alpha=p["lasso.alpha"], max_iter=5000)
    if name == "lasso_cv":
        from sklearn.linear_model import LassoCV

        return LassoCV(cv=5, max_iter=5000)
    if name == "elastic_net":
        from sklearn.linear_model import ElasticNet

        return ElasticNet(alpha=p["enet.alpha"], l1_ratio=p["enet.l1_ratio"], max_iter=5000)
    if name == "bayesian_ridge":
        from sklearn.linear_model import BayesianRidge

        return BayesianRidge()
    if name == "lasso_lars_ic":
        from sklearn.linear_model import LassoLarsIC

        return LassoLarsIC(criterion=p["lars_ic.criterion"])
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=p["logistic.C"], max_iter=2000)
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsRegressor if regression else KNeighborsClassifier
        return cls(n_neighbors=int(p["knn.n_neighbors"]), weights=p["knn.weights"])
    if name == "svm":
        from sklearn.svm import SVC, SVR

        if regression:
            from sklearn.compose import TransformedTargetRegressor
            from sklearn.preprocessing import StandardScaler

            # C and epsilon are on the scale of the target: standardise it for the SVR
            return TransformedTargetRegressor(
                regressor=SVR(C=p["svm.C"], gamma=p["svm.gamma"], epsilon=p["svm.epsilon"]),
                transformer=StandardScaler(),
            )
        from sklearn.calibration import CalibratedClassifierCV

        # Platt scaling on cross-validated decision values (what SVC(probability=True) did)
        return CalibratedClassifierCV(
            SVC(C=p["svm.C"], gamma=p["svm.gamma"], random_state=seed),
            method="sigmoid",
            cv=3,
            ensemble=False,
        )
    if name in ("random_forest", "extra_trees"):
        from sklearn import ensemble

        prefix = "rf" if name == "random_forest" else "et"
        kind = "RandomForest" if name == "random_forest" else "ExtraTrees"
        cls = getattr(ensemble, kind + ("Regressor" if regression else "Classifier"))
        return cls(
            n_estimators=int(p[f"{prefix}.n_estimators"]),
            max_features=float(p[f"{prefix}.max_features"]),
            min_samples_leaf=int(p[f"{prefix}.min_samples_leaf"]),
            random_state=seed,
            n_jobs=1,
        )
    if name == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return cls(
            learning_rate=p["hgb.learning_rate"],
            max_iter=int(p["hgb.max_iter"]),
            max_leaf_nodes=int(p["hgb.max_leaf_nodes"]),
            min_samples_leaf=int(p["hgb.min_samples_leaf"]),
            l2_regularization=p["hgb.l2_regularization"],
            early_stopping=False,
            random_state=seed,
        )
    if name == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        return cls(
            n_estimators=int(p["lgbm.n_estimators"]),
            learning_rate=p["lgbm.learning_rate"],
            num_leaves=int(p["lgbm.num_leaves"]),
            min_child_samples=int(p["lgbm.min_child_samples"]),
            reg_lambda=p["lgbm.reg_lambda"],
            colsample_bytree=p["lgbm.colsample_bytree"],
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
    if name == "xgboost":
        import xgboost

        return xgboost.XGBRegressor(
            n_estimators=int(p["xgb.n_estimators"]),
            learning_rate=p["xgb.learning_rate"],
            max_depth=int(p["xgb.max_depth"]),
            min_child_weight=p["xgb.min_child_weight"],
            subsample=p["xgb.subsample"],
            reg_lambda=p["xgb.reg_lambda"],
            random_state=seed,
            n_jobs=1,
        )
    raise InvalidInput(f"unknown estimator {name!r}", hint=f"known: {', '.join(ESTIMATORS)}")


def probe(name: str, X: Any) -> list[tuple[Any, Any]]:
    """Tiny unfitted models of an optional package's estimators with targets for ``X``: what
    the space fits once to check that their saved files load under the trust policy."""
    import numpy as np

    y_reg = X[:, 0] + np.arange(len(X)) % 3
    y_cls = (X[:, 0] > 0).astype(int)
    if name == "lightgbm":
        import lightgbm

        common: dict[str, Any] = {
            "n_estimators": 2,
            "min_child_samples": 2,
            "verbose": -1,
            "n_jobs": 1,
        }
        return [
            (lightgbm.LGBMRegressor(**common), y_reg),
            (lightgbm.LGBMClassifier(**common), y_cls),
        ]
    if name == "xgboost":
        import xgboost

        return [(xgboost.XGBRegressor(n_estimators=2, n_jobs=1), y_reg)]
    raise InvalidInput(f"no probe for {name!r}")
