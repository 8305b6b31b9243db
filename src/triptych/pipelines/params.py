"""Parameters: ``params.yaml`` (a section per step) and ``--param key=value`` overrides.

Precedence, highest first: ``--param``, ``params.yaml``, the value given in the
``@pipeline`` function's call, the step function's default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput

PARAMS_FILE = "params.yaml"

Sections = dict[str, dict[str, Any]]


def read_file(path: Path) -> Sections:
    """The sections of a params file; a missing file is no parameters."""
    import yaml

    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path} is not valid YAML: {e}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidInput(
            f"{path} must map step names to sections of parameters",
            hint="e.g.\ntrain:\n  alpha: 0.5",
        )
    return {str(k): {str(kk): vv for kk, vv in v.items()} for k, v in data.items()}


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["train.alpha=2", "seed=1"]`` → ``{"train.alpha": 2, "seed": 1}`` (values are YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(
                f"--param {pair!r} is not key=value", hint="e.g. --param train.alpha=2"
            )
        try:
            out[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[key] = text
    return out


def merge(
    sections: Sections, overrides: Mapping[str, Any], owners: Mapping[str, Iterable[str]]
) -> Sections:
    """Apply overrides to the sections. ``owners`` maps each section (a step or the pipeline)
    to the parameter names it takes, so ``alpha=2`` finds the one section that has ``alpha``
    and a typo fails instead of being ignored."""
    merged = {k: dict(v) for k, v in sections.items()}
    for key, value in overrides.items():
        section, dot, name = key.rpartition(".")
        if not dot:
            having = sorted(s for s, names in owners.items() if key in names)
            if len(having) != 1:
                raise InvalidInput(
                    f"--param {key}: "
                    + (f"{len(having)} steps take {key!r}" if having else f"no step takes {key!r}"),
                    hint="name the step: --param STEP."
                    + key
                    + "=VALUE"
                    + (f" (one of {', '.join(having)})" if having else ""),
                )
            section, name = having[0], key
        if section not in owners:
            raise InvalidInput(
                f"--param {key}: there is no step {section!r}",
                hint=f"steps: {', '.join(sorted(owners))}",
            )
        merged.setdefault(section, {})[name] = value
    return merged


def check_known(sections: Sections, owners: Mapping[str, Iterable[str]], source: str) -> None:
    """Refuse a parameter a step does not take (a typo would otherwise be silently unused)."""
    for section, values in sections.items():
        if section not in owners:
            continue  # other tools' sections may share the file
        takes = set(owners[section])
        unknown = sorted(set(values) - takes)
        if unknown:
            raise InvalidInput(
                f"{source}: step {section!r} takes no parameter {unknown[0]!r}",
                hint=f"its parameters: {', '.join(sorted(takes)) or '(none)'}",
            )


def canonical(value: Any) -> str:
    """The JSON text of a parameter value, the same for equal values."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"parameter value {value!r} is not JSON",
            hint="parameters are numbers, strings, booleans, lists and dicts",
        ) from None


def flatten(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{"train": {"alpha": 2}}`` → ``{"train.alpha": "2"}``: run params are strings."""
    out: dict[str, str] = {}
    for section, values in sections.items():
        for key, value in values.items():
            out[f"{section}.{key}"] = value if isinstance(value, str) else canonical(value)
    return out
