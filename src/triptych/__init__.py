"""triptych: the ML lifecycle in one install.

``import triptych`` stays light: the public names below are imported on first use, so the
CLI and scripts that never log start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_FLUENT = (
    "start_run",
    "end_run",
    "active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "log_artifact",
    "log_artifacts",
    "log_text",
    "log_dict",
    "log_figure",
    "log_input",
    "flush",
    "set_tracking_uri",
    "ActiveRun",
)
_EXPORTS: dict[str, str] = {name: "triptych.tracking.fluent" for name in _FLUENT}
_EXPORTS.update(
    {
        "Client": "triptych.tracking.client",
        "RunStatus": "triptych.store.entities",
        "Metric": "triptych.store.entities",
        "TriptychError": "triptych.errors",
        "settings": "triptych.config",
        "log_model": "triptych.models.packaging",
        "load_model": "triptych.models.model",
    }
)
__all__ = [
    "ActiveRun",
    "Client",
    "Metric",
    "RunStatus",
    "TriptychError",
    "__version__",
    "active_run",
    "automl",
    "data",
    "deployments",
    "end_run",
    "flush",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipelines",
    "registry",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "settings",
    "start_run",
]

if TYPE_CHECKING:
    from triptych import automl, data, deployments, pipelines
    from triptych.errors import TriptychError
    from triptych.models import registry
    from triptych.models.model import load_model
    from triptych.models.packaging import log_model
    from triptych.store.entities import Metric, RunStatus
    from triptych.tracking.client import Client
    from triptych.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )


def __getattr__(name: str) -> Any:
    if name in ("data", "pipelines", "automl", "deployments"):  # subpackages, loaded on first use
        return importlib.import_module(f"triptych.{name}")
    if name == "registry":  # the model registry (triptych.registry.gate, …)
        return importlib.import_module("triptych.models.registry")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'triptych' has no attribute {name!r}")
    if name == "settings":
        return importlib.import_module(module).resolve
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
