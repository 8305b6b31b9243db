"""Monitors: what to watch on a deployment, against what, and who to tell.

One monitor per deployment, named like it. Its reference is a pinned dataset version
(``datasets:/NAME@VERSION``); by default the training data of the model the deployment's
primary serves now, found in the inputs the model's run recorded (``log_input("datasets:/…")``).
Pinning at creation keeps the baseline fixed when the alias later moves: comparing against the
new champion's data is a deliberate ``update``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound
from triptych.store.entities import Monitor, MonitorSpec, MonitorThresholds
from triptych.store.monitoring import validate_monitor_spec

if TYPE_CHECKING:
    from triptych.tracking.client import Client

_THRESHOLDS = tuple(f.name for f in fields(MonitorThresholds))


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def seconds(value: str | int, what: str = "window") -> int:
    """``"15m"``, ``"1h"``, ``"1d"`` (or a number of seconds) in seconds."""
    if isinstance(value, bool):
        raise InvalidInput(f"invalid {what} {value!r}", hint="use e.g. 15m, 1h, 1d")
    if isinstance(value, int):
        return value
    from triptych.monitoring.performance import parse_window

    try:
        return parse_window(value) // 1000
    except InvalidInput as e:
        raise InvalidInput(f"invalid {what} {value!r}", hint=e.hint) from None


def parse_thresholds(
    value: MonitorThresholds | Mapping[str, Any] | None, base: MonitorThresholds | None = None
) -> MonitorThresholds:
    """Thresholds from a mapping of overrides (None switches a check off). Raises InvalidInput
    for an unknown name."""
    base = base or MonitorThresholds()
    if value is None:
        return base
    if isinstance(value, MonitorThresholds):
        return value
    unknown = sorted(set(value) - set(_THRESHOLDS))
    if unknown:
        raise InvalidInput(
            f"unknown threshold {unknown[0]!r}", hint=f"use {', '.join(_THRESHOLDS)}"
        )
    return replace(base, **dict(value))


def training_data(deployment: str, *, client: Client | None = None) -> str:
    """The ``datasets:/NAME@VERSION`` the deployment's primary model was trained on: an input
    of the run that logged it, or of its pipeline run when a pipeline step logged it.

    Raises NotFound when the model's run recorded no registered dataset (then the reference
    has to be given)."""
    from triptych.deployments import get, target
    from triptych.uris import parse_runs_uri

    c = _client(client)
    d = get(deployment, client=c)
    t = target(d.primary, client=c)
    run = c.store.get_run(parse_runs_uri(t.source).run_id)
    found = [i.source for i in run.inputs if i.source and i.source.startswith("datasets:/")]
    if not found and run.parent_run_id:  # a pipeline step: the pipeline run holds the data leg
        parent = c.store.get_run(run.parent_run_id)
        found = [i.source for i in parent.inputs if i.source and i.source.startswith("datasets:/")]
    if not found:
        raise NotFound(
            f"the model deployment {d.name!r} serves ({t.source}) records no registered "
            "training data",
            hint="pass the reference: --reference datasets:/NAME@VERSION",
        )
    return sorted(found)[0]


def _pinned(reference: str, client: Client) -> str:
    """``datasets:/NAME@latest`` or ``NAME@3`` → ``datasets:/NAME@3``; the version must exist."""
    from triptych.data.registry import get

    return get(reference, client=client).uri


def create(
    deployment: str,
    *,
    reference: str | None = None,
    window: str | int = "1h",
    thresholds: MonitorThresholds | Mapping[str, Any] | None = None,
    webhooks: Iterable[str] = (),
    cooldown: str | int = "1h",
    actor: str | None = None,
    client: Client | None = None,
) -> Monitor:
    """Create the monitor of ``deployment``. Raises NotFound (no such deployment, dataset or
    training data), InvalidInput, AlreadyExists; nothing is written then."""
    from triptych.deployments import get
    from triptych.models import registry

    c = _client(client)
    name = get(deployment, client=c).name
    spec = MonitorSpec(
        reference=_pinned(reference or training_data(name, client=c), c),
        window_s=seconds(window),
        thresholds=parse_thresholds(thresholds),
        webhooks=tuple(webhooks),
        cooldown_s=seconds(cooldown, "cooldown"),
    )
    result: Monitor = c.store.create_monitor(
        name, validate_monitor_spec(spec), actor=actor or registry._user()
    )
    return result


def update(
    deployment: str,
    *,
    reference: str | None = None,
    window: str | int | None = None,
    thresholds: Mapping[str, Any] | None = None,
    webhooks: Iterable[str] | None = None,
    cooldown: str | int | None = None,
    client: Client | None = None,
) -> Monitor:
    """Change some fields of a monitor; the others stay. Raises NotFound, InvalidInput."""
    c = _client(client)
    current = get(deployment, client=c)
    spec = MonitorSpec(
        reference=_pinned(reference, c) if reference else current.reference,
        window_s=seconds(window) if window is not None else current.window_s,
        thresholds=parse_thresholds(thresholds, current.thresholds),
        webhooks=tuple(webhooks) if webhooks is not None else current.webhooks,
        cooldown_s=seconds(cooldown, "cooldown") if cooldown is not None else current.cooldown_s,
    )
    result: Monitor = c.store.update_monitor(current.name, validate_monitor_spec(spec))
    return result


def get(deployment: str, *, client: Client | None = None) -> Monitor:
    """The monitor of ``NAME`` or ``deployments:/NAME``. Raises NotFound."""
    from triptych.deployments import name_of

    result: Monitor = _client(client).store.get_monitor(name_of(deployment))
    return result


def list(*, client: Client | None = None) -> builtins.list[Monitor]:
    """Every monitor, by name."""
    result: builtins.list[Monitor] = _client(client).store.list_monitors()
    return result


def delete(deployment: str, *, client: Client | None = None) -> None:
    """Delete the monitor (its alerts stay). Raises NotFound."""
    from triptych.deployments import name_of

    _client(client).store.delete_monitor(name_of(deployment))
