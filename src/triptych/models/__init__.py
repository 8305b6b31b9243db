"""Models: package a trained model as run artifacts, load it back safely.

    import triptych
    with triptych.start_run():
        logged = triptych.log_model(pipeline, "model", input_example=train.head(5))
    model = triptych.load_model(logged.uri)          # runs:/<run_id>/model
    model.predict(new_rows)                          # checked against the signature

A model is a folder of artifacts: the model file (skops by default; pickle only on request),
``manifest.json`` (flavour, digest, signature, pinned requirements, run and fingerprint) and
an optional ``input_example.json``. Loading trusts only the types the platform policy allows
(:mod:`triptych.models.trust`), never a list carried by the artifact.

Imported lazily: ``import triptych`` does not load scikit-learn, skops or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "log_model": "packaging",
    "LoggedModel": "packaging",
    "load_model": "model",
    "Model": "model",
    "Manifest": "manifest",
    "Signature": "signature",
    "ColumnSpec": "signature",
    "OutputSpec": "signature",
    "infer_signature": "signature",
    "TriptychWarning": "signature",
    "TrustPolicy": "trust",
    "Flavour": "flavours",
}
# Submodules; none shares a name with an export above (an imported submodule would shadow it).
_MODULES = (
    "flavours",
    "manifest",
    "model",
    "packaging",
    "registry",
    "serializers",
    "signature",
    "trust",
)
__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"triptych.models.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'triptych.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"triptych.models.{module}"), name)
