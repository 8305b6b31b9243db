"""Which types a model file may contain: the platform's trust policy for skops files.

skops refuses to load any type outside a small built-in set (scikit-learn estimators, numpy
and scipy ufuncs and dtypes, primitives) unless the caller lists it. This module decides that
list — from the platform policy only, never from anything stored with the model:

1. **builtins**: exactly the names in :data:`TRUSTED_BUILTINS` (never ``eval``, ``exec``,
   ``open``, ``getattr``… — so never a ``builtins.*`` prefix), and ``collections.OrderedDict``
   (a dict that keeps its order; LightGBM's and XGBoost's estimators hold one).
2. **scikit-learn, numpy, scipy classes**: a name under ``sklearn.``, ``numpy.`` or
   ``scipy.`` is trusted when it names a *class* whose own module is also in those packages,
   and neither the name nor the class's real location is under :data:`DENIED`. Functions
   are not trusted by this rule: skops can call a trusted name with arguments from the file
   (``ConstructorFromReduceNode``) and models call stored callables at predict time, so a
   function such as ``sklearn.feature_selection.f_classif`` must be listed explicitly.
   Resolving the name catches re-exports: ``sklearn.utils.discovery.import_module`` is
   ``importlib.import_module`` and is refused.
3. **the operator's additions**: the setting ``trusted_types`` (``TRIPTYCH_TRUSTED_TYPES``)
   and the ``trusted_types=`` argument of ``load_model``, comma-separated entries
   ``module.Name`` (exactly that name) or ``module.*`` (anything whose name *and* real module
   are under ``module``). These are explicit opt-ins: :data:`DENIED` does not apply to them.

:data:`DENIED` holds what inside those packages reads or writes files, reaches the network,
loads native code, runs generated code or exists for tests. ``scipy.stats`` is there because
its distribution objects ``exec`` a template taken from their state when unpickled — a skops
file holding a crafted ``norm_gen`` runs any code at load time.

skops checks types, not content: a file of trusted types with crafted arrays can still crash
the process (skops leaves ``TreePredictor`` untrusted for this reason; rule 2 trusts it, as it
trusts every scikit-learn class, since tree ensembles are among the most common models).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from triptych import config

TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")

TRUSTED_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in (
        "bool",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "range",
        "slice",
        "NoneType",
    )
) | {"collections.OrderedDict"}

DENIED = (
    # files, memory maps, raw pointers, native libraries, build tools, tests
    "numpy.memmap",
    "numpy.DataSource",
    "numpy._core.memmap",
    "numpy.core.memmap",
    "numpy.ctypeslib",
    "numpy.distutils",
    "numpy.f2py",
    "numpy.testing",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib._format_impl",
    "numpy.lib._datasource",
    "numpy.lib._iotools",
    "numpy.lib.stride_tricks",
    "numpy.lib._stride_tricks_impl",
    # code generated from state (scipy.stats), callbacks into native code, files, downloads
    "scipy.stats",
    "scipy.LowLevelCallable",
    "scipy._lib",
    "scipy.io",
    "scipy.datasets",
    "scipy.misc",
    # downloads and file writes, vendored third-party code, test helpers, subprocess managers
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.utils._testing",
    "sklearn.utils.estimator_checks",
    "sklearn.callback",
)
_TEST_PARTS = frozenset({"tests", "testing", "conftest", "_testing"})
_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?$")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _denied(name: str) -> bool:
    if any(_under(name, d) for d in DENIED):
        return True
    return any(p in _TEST_PARTS or p.startswith("test_") for p in name.split("."))


def parse_entries(value: str | Sequence[str] | None, origin: str) -> tuple[str, ...]:
    """Entries from a comma-separated string or a list; each ``module.Name`` or ``module.*``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    entries = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"{origin}: entries must be strings, got {item!r}")
        entry = item.strip()
        if not entry:
            continue
        if not _ENTRY.fullmatch(entry) or "." not in entry:
            error = ConfigError if origin.startswith("setting") else InvalidInput
            raise error(
                f"{origin}: invalid trusted type {entry!r}",
                hint="use module.Type or module.* (e.g. mypackage.MyModel, mypackage.*)",
            )
        entries.append(entry)
    return tuple(entries)


def _resolve(name: str) -> Any:
    """The object a skops name points at: ``module.attr`` (one attribute, as skops does)."""
    module, _, attr = name.rpartition(".")
    if not module or not attr:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases (numpy.core…) still resolve
            return getattr(importlib.import_module(module), attr)
    except Exception:  # not importable: cannot be shown to be safe
        return None


def _home(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else ""


@dataclass(frozen=True)
class TrustPolicy:
    """The default rules plus the operator's ``exact`` names and ``prefixes`` (``module``)."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> TrustPolicy:
        exact: set[str] = set()
        prefixes: list[str] = []
        for entry in entries:
            if entry.endswith(".*"):
                prefixes.append(entry[:-2])
            else:
                exact.add(entry)
        return cls(frozenset(exact), tuple(prefixes))

    @classmethod
    def current(
        cls,
        trusted_types: str | Sequence[str] | None = None,
        *,
        settings: config.Settings | None = None,
    ) -> TrustPolicy:
        """The policy in force: the setting ``trusted_types`` (of ``settings``, by default
        resolved now) plus the ``trusted_types`` argument (of ``load_model``)."""
        from triptych import config

        setting = (settings or config.resolve()).trusted_types
        return cls.from_entries(
            (
                *parse_entries(setting, "setting trusted_types (TRIPTYCH_TRUSTED_TYPES)"),
                *parse_entries(trusted_types, "trusted_types"),
            )
        )

    def allows(self, name: str) -> bool:
        """Whether a type name skops reported as untrusted may be loaded."""
        if name in TRUSTED_BUILTINS or name in self.exact:
            return True
        for prefix in self.prefixes:
            if _under(name, prefix):
                obj = _resolve(name)
                if obj is not None and _under(getattr(obj, "__module__", "") or "", prefix):
                    return True
        if not any(_under(name, p) for p in TRUSTED_PACKAGES) or _denied(name):
            return False
        obj = _resolve(name)
        if not isinstance(obj, type):
            return False
        home = _home(obj)
        return any(_under(home, p) for p in TRUSTED_PACKAGES) and not _denied(home)

    def split(self, names: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(allowed, refused)``, each sorted."""
        allowed: list[str] = []
        refused: list[str] = []
        for name in sorted(set(names)):
            (allowed if self.allows(name) else refused).append(name)
        return allowed, refused
