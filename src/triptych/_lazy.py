"""Import optional or heavy modules at the point of use, with the install hint on failure."""

from __future__ import annotations

import importlib
from types import ModuleType

from triptych.errors import MissingDependency


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(
            f"{module} is not installed",
            hint=f"pip install 'triptych[{extra}]'",
        ) from e


def load_object(path: str) -> object:
    """Load ``"package.module:attr"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
