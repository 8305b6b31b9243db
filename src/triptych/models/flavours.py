"""Flavours: which kinds of model triptych can package, and what each needs to run.

A flavour is recognised from the model's class and its bases, by module name, so detecting
one never imports its library: a LightGBM model is recognised whether or not this process
could import ``lightgbm``. LightGBM and XGBoost models are handled through their
scikit-learn API (``LGBMRegressor``, ``XGBClassifier`` …), so all three share one
serializer path and the :class:`~triptych.models.model.Model` wrapper.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput


@dataclass(frozen=True)
class Flavour:
    """A kind of model: recognised by ``package`` (the top-level module of its classes)."""

    name: str
    package: str  # import name
    distribution: str  # what pip installs
    requirements: tuple[str, ...]  # distributions (normalised names) the model needs to run


_SKLEARN = ("scikit-learn", "numpy", "scipy", "pandas")

# Most specific first: an LGBMRegressor is also a scikit-learn estimator.
FLAVOURS: dict[str, Flavour] = {
    f.name: f
    for f in (
        Flavour("lightgbm", "lightgbm", "lightgbm", (*_SKLEARN, "lightgbm")),
        Flavour("xgboost", "xgboost", "xgboost", (*_SKLEARN, "xgboost")),
        Flavour("sklearn", "sklearn", "scikit-learn", _SKLEARN),
    )
}


def _packages(obj: Any) -> set[str]:
    """Top-level packages of ``obj``'s class and all its bases."""
    return {cls.__module__.split(".", 1)[0] for cls in type(obj).__mro__}


def detect(model: Any) -> Flavour:
    """The flavour of ``model``, or InvalidInput naming the supported ones."""
    found = _packages(model)
    for flavour in FLAVOURS.values():
        if flavour.package in found:
            if not callable(getattr(model, "predict", None)):
                raise InvalidInput(
                    f"{_qualname(model)} has no predict method",
                    hint="log a fitted estimator or pipeline that ends in one",
                )
            return flavour
    raise InvalidInput(
        f"cannot package a {_qualname(model)}: no flavour handles it",
        hint="supported flavours: "
        + ", ".join(f"{f.name} ({f.package} models)" for f in FLAVOURS.values()),
    )


def get(name: str) -> Flavour:
    """The flavour a manifest names."""
    try:
        return FLAVOURS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown model flavour {name!r}",
            hint=f"this triptych knows: {', '.join(FLAVOURS)}; upgrade it to load this model",
        ) from None


def nested_flavours(model: Any) -> list[Flavour]:
    """Flavours of the estimators inside ``model`` (a pipeline's steps, a search's estimator),
    so a scikit-learn pipeline ending in an LGBMRegressor still pins lightgbm."""
    packages: set[str] = set()
    for part in _walk(model, depth=0):
        packages |= _packages(part)
    return [f for f in FLAVOURS.values() if f.package in packages]


def _walk(obj: Any, depth: int) -> Iterator[Any]:
    yield obj
    if depth > 20:
        return
    get_params = getattr(obj, "get_params", None)
    if not callable(get_params) or isinstance(obj, type):
        return
    try:
        params = get_params(deep=False)
    except Exception:  # a third-party estimator with a broken get_params: its class is enough
        return
    for value in params.values():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            # Pipeline steps and ColumnTransformer transformers are (name, estimator, ...)
            candidates = item if isinstance(item, tuple) else (item,)
            for candidate in candidates:
                if hasattr(candidate, "get_params") and not isinstance(candidate, type):
                    yield from _walk(candidate, depth + 1)


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
