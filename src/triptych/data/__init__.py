"""Data under control: versioned datasets, schemas, profiles, checks and lineage.

    import triptych
    v = triptych.data.add("diabetes", "diabetes.csv")      # -> datasets:/diabetes@1
    df = triptych.data.load("datasets:/diabetes@latest")
    triptych.data.validate("diabetes", "new.csv")          # -> list of violations
    triptych.data.checks.distribution_shift_check(reference, current)

Imported lazily: ``import triptych`` does not load pandas or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_FUNCTIONS = {
    "add": "registry",
    "get": "registry",
    "load": "registry",
    "load_table": "registry",
    "list_datasets": "registry",
    "versions": "registry",
    "tag": "registry",
    "delete": "registry",
    "lineage": "registry",
    "validate": "registry",
    "check": "registry",
    "get_schema": "registry",
    "set_schema": "registry",
    "parse_ref": "registry",
    "split": "splits",
    "Split": "splits",
    "Schema": "schema",
    "infer_schema": "schema",
}
# Submodules; none shares a name with a function above (an imported submodule would shadow it).
_MODULES = ("checks", "schema", "profile", "registry", "ingest", "splits")
__all__ = sorted([*_FUNCTIONS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES and name not in _FUNCTIONS:
        return importlib.import_module(f"triptych.data.{name}")
    module = _FUNCTIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'triptych.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"triptych.data.{module}"), name)
