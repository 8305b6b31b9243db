"""Alerts: threshold breaches recorded once, then told to people and to the retraining loop.

:func:`raise_alert` records a breach through the store, which dedupes it (an active alert of
the same ``(monitor, kind, key)`` counts it) and applies the monitor's cooldown (a resolved one
first seen within the cooldown counts it too), atomically across processes. Only a *new* alert
is delivered:

* to the ``triptych.alerts`` logger (level from the severity);
* as a trigger event ``KIND:MONITOR`` (e.g. ``drift:diabetes``), so schedules created with
  ``on_alert`` fire (:func:`triptych.pipelines.schedules.notify_alert`);
* as a JSON POST to each of the monitor's webhooks, on background threads through the SSRF
  guard (:mod:`triptych.monitoring.webhooks`): the caller does not wait for them.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.store.entities import Alert, Monitor

if TYPE_CHECKING:
    from triptych.monitoring.webhooks import Allow, Delivery
    from triptych.tracking.client import Client

log = logging.getLogger("triptych.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class Raised:
    """What :func:`raise_alert` did. ``outcome``: ``raised``, ``deduplicated`` or ``cooled``;
    ``deliveries`` holds one future per webhook (empty unless the alert is new)."""

    alert: Alert
    outcome: str
    deliveries: tuple[Future[Delivery], ...] = field(default=())

    @property
    def is_new(self) -> bool:
        return self.outcome == "raised"


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def to_dict(alert: Alert) -> dict[str, Any]:
    """The alert as plain JSON-able values (webhook body, ``--json``)."""
    return asdict(alert)


def raise_alert(
    monitor: str | Monitor,
    kind: str,
    key: str,
    severity: str,
    message: str,
    payload: Mapping[str, Any] | None = None,
    *,
    allow: Allow | None = None,
    client: Client | None = None,
) -> Raised:
    """Record a breach of ``monitor`` (a deployment name or the Monitor) and, when it is new,
    deliver it. Raises NotFound (no such monitor) or InvalidInput; nothing is written then."""
    c = _client(client)
    m = monitor if isinstance(monitor, Monitor) else c.store.get_monitor(monitor)
    done = c.store.raise_alert(
        m.name, kind, key, severity, message, payload, cooldown_s=m.cooldown_s
    )
    alert = done.alert
    if not done.is_new:
        log.debug("alert %s %s:%s/%s %s (x%d)", alert.id, kind, m.name, key, done.outcome,
                  alert.count)  # fmt: skip
        return Raised(alert, done.outcome)
    log.log(_LEVELS.get(severity, logging.WARNING), "alert %d [%s] %s:%s/%s: %s",
            alert.id, severity, kind, m.name, key, message)  # fmt: skip
    body = {"event": "alert.raised", "deployment": m.name, "alert": to_dict(alert)}
    _notify_schedules(f"{kind}:{m.name}", body, c)
    return Raised(alert, done.outcome, _deliver(m, body, allow))


def _notify_schedules(name: str, body: Mapping[str, Any], client: Client) -> None:
    """An alert schedule that cannot be told must not lose the alert itself: log and go on."""
    from triptych.errors import TriptychError
    from triptych.pipelines.schedules import notify_alert

    try:
        notify_alert(name, body, client=client)
    except TriptychError as e:  # pragma: no cover - the store just wrote the alert
        log.error("could not record trigger event %s: %s", name, e)


def _deliver(monitor: Monitor, body: Mapping[str, Any], allow: Allow | None) -> tuple[Any, ...]:
    if not monitor.webhooks:
        return ()
    from triptych.monitoring.webhooks import deliver_in_background

    return tuple(deliver_in_background(url, body, allow=allow) for url in monitor.webhooks)


def get(alert_id: int, *, client: Client | None = None) -> Alert:
    """The alert with this id. Raises NotFound."""
    result: Alert = _client(client).store.get_alert(alert_id)
    return result


def list(
    monitor: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
    client: Client | None = None,
) -> builtins.list[Alert]:
    """Alerts, newest first, optionally of one deployment's monitor and one status."""
    from triptych.deployments import name_of

    name = name_of(monitor) if monitor is not None else None
    result: builtins.list[Alert] = _client(client).store.list_alerts(
        monitor=name, status=status, limit=limit
    )
    return result


def acknowledge(alert_id: int, *, actor: str | None = None, client: Client | None = None) -> Alert:
    """Say someone is on it: the alert stays active (it keeps counting breaches)."""
    from triptych.models import registry

    result: Alert = _client(client).store.set_alert_status(
        alert_id, "acknowledged", actor=actor or registry._user()
    )
    return result


def resolve(alert_id: int, *, actor: str | None = None, client: Client | None = None) -> Alert:
    """Close the alert: the next breach of its key raises a new one after the cooldown."""
    from triptych.models import registry

    result: Alert = _client(client).store.set_alert_status(
        alert_id, "resolved", actor=actor or registry._user()
    )
    return result
