"""The monitoring half of the metadata store contract (mixed into ``MetadataStore``).

Monitors (one per deployment, named like it) and their alerts. Dedupe and cooldown are decided
by the store inside one transaction, so two processes raising the same alert at once record
one: at most one *active* (open or acknowledged) alert exists per ``(monitor, kind, key)``.
Whether the deployment or the reference dataset exists is the service's to check
(``triptych.monitoring.monitors``); the store checks shapes only.

Unless a method says otherwise, the rules of :mod:`triptych.store.base` hold: safe from many
threads and processes, atomic, NotFound for a missing monitor or alert, InvalidInput (nothing
written) for bad values.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from triptych.errors import InvalidInput
from triptych.store.entities import (
    ALERT_STATUSES,
    LOOP_TRIGGERS,
    Alert,
    LoopPolicy,
    Monitor,
    MonitorSpec,
    MonitorThresholds,
    RaisedAlert,
)

SEVERITIES = ("info", "warning", "critical")
MAX_WINDOW_S = 90 * 86400
MAX_MESSAGE = 8000
MAX_URL = 2000
MAX_WEBHOOKS = 20
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_SHARES = ("drift_share", "max_decay")
_REFERENCE = re.compile(r"^datasets:/[^@/\s]{1,250}@[1-9][0-9]{0,9}$")


class MonitoringStore(ABC):
    """Monitors and alerts; see the module docstring for the shared rules."""

    @abstractmethod
    def create_monitor(self, name: str, spec: MonitorSpec, *, actor: str | None = None) -> Monitor:
        """Create the monitor of deployment ``name``. Raises AlreadyExists when it has one
        (also when two callers race), InvalidInput for a bad name or spec
        (see :func:`validate_monitor_spec`)."""

    @abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """The monitor of deployment ``name``. Raises NotFound."""

    @abstractmethod
    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""

    @abstractmethod
    def update_monitor(self, name: str, spec: MonitorSpec) -> Monitor:
        """Replace the monitor's spec and bump ``updated_at``. Raises NotFound, InvalidInput."""

    @abstractmethod
    def delete_monitor(self, name: str) -> None:
        """Delete the monitor; its alerts stay (they are history). Raises NotFound."""

    @abstractmethod
    def raise_alert(
        self,
        monitor: str,
        kind: str,
        key: str,
        severity: str,
        message: str,
        payload: Mapping[str, Any] | None = None,
        *,
        cooldown_s: int = 0,
        at: int | None = None,
    ) -> RaisedAlert:
        """Record a breach, in one transaction:

        * an active (open or acknowledged) alert with the same ``(monitor, kind, key)``
          counts it (``count`` + 1, ``last_seen`` = now; message and payload replaced):
          outcome ``deduplicated``;
        * else a resolved one first seen less than ``cooldown_s`` seconds ago counts it the
          same way: outcome ``cooled``;
        * else a new open alert: outcome ``raised``.

        ``at`` (epoch ms) defaults to now. Does not check that the monitor exists. Concurrent
        callers with the same key get one new alert between them. Raises InvalidInput."""

    @abstractmethod
    def get_alert(self, alert_id: int) -> Alert:
        """The alert with this id. Raises NotFound."""

    @abstractmethod
    def list_alerts(
        self,
        *,
        monitor: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts, newest first (by ``last_seen``, then id), optionally of one monitor and
        one status. Raises InvalidInput for an unknown status."""

    @abstractmethod
    def set_alert_status(self, alert_id: int, status: str, *, actor: str | None = None) -> Alert:
        """Acknowledge (``acknowledged``) or resolve (``resolved``) an alert and record who.

        Acknowledging an acknowledged alert, or resolving a resolved one, changes nothing.
        Raises NotFound, InvalidInput for another status, Conflict when acknowledging a
        resolved alert (it is over; a new breach raises a new one)."""


# -- shape checks, shared by every backend ------------------------------------------------------
def validate_monitor_name(name: object) -> str:
    """Monitors are named like their deployment."""
    from triptych.store.deployments import validate_deployment_name

    try:
        return validate_deployment_name(name)
    except InvalidInput as e:
        raise InvalidInput(f"invalid monitor name {name!r}", hint=e.hint) from None


def validate_thresholds(t: MonitorThresholds) -> MonitorThresholds:
    for f in fields(MonitorThresholds):
        value = getattr(t, f.name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"threshold {f.name} must be a number, got {value!r}")
        top = 1.0 if f.name in _SHARES else math.inf
        if not (math.isfinite(value) and 0 < value <= top):
            bound = "in (0, 1]" if f.name in _SHARES else "a positive finite number"
            raise InvalidInput(f"threshold {f.name} must be {bound}, got {value!r}")
    return t


def _seconds(what: str, value: object, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number of seconds, got {value!r}")
    if not lowest <= value <= MAX_WINDOW_S:
        raise InvalidInput(
            f"{what} must be between {lowest}s and 90 days, got {value}s",
            hint="e.g. 15m, 1h, 1d",
        )
    return value


def validate_webhook_shape(url: object) -> str:
    """A webhook must be an absolute http(s) URL; the address checks happen at delivery."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidInput(f"invalid webhook URL {url!r}", hint="use https://host/path")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise InvalidInput(f"invalid webhook URL: {e}", hint="use https://host/path") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"webhook URLs must be http:// or https:// with a host, got scheme {parts.scheme!r}",
            hint="use https://host/path",
        )
    return url


def validate_monitor_spec(spec: MonitorSpec) -> MonitorSpec:
    if not isinstance(spec.reference, str) or not _REFERENCE.match(spec.reference):
        raise InvalidInput(
            f"the reference must be a datasets:/NAME@VERSION address, got {spec.reference!r}",
            hint="e.g. datasets:/diabetes@3",
        )
    _seconds("the window", spec.window_s, 60)
    _seconds("the cooldown", spec.cooldown_s, 0)
    validate_thresholds(spec.thresholds)
    webhooks = tuple(spec.webhooks)
    if len(webhooks) > MAX_WEBHOOKS:
        raise InvalidInput(f"at most {MAX_WEBHOOKS} webhooks per monitor, got {len(webhooks)}")
    for url in webhooks:
        validate_webhook_shape(url)
    if len(set(webhooks)) != len(webhooks):
        raise InvalidInput("the same webhook URL is listed twice")
    if spec.policy is not None:
        validate_policy(spec.policy)
    return spec


_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def validate_policy(p: object) -> LoopPolicy:
    """Shapes of a loop policy (whether the pipeline file exists is the service's to check)."""
    if not isinstance(p, LoopPolicy):
        raise InvalidInput(f"a policy must be a LoopPolicy, got {type(p).__name__}")
    if not isinstance(p.pipeline, str) or not p.pipeline.strip() or len(p.pipeline) > 1000:
        raise InvalidInput(
            f"invalid pipeline {p.pipeline!r}", hint="name a pipeline file, e.g. pipeline.py"
        )
    triggers = tuple(p.triggers)
    unknown = [t for t in triggers if t not in LOOP_TRIGGERS]
    if not triggers or unknown or len(set(triggers)) != len(triggers):
        raise InvalidInput(
            f"invalid triggers {list(triggers)!r}",
            hint=f"choose one or more of {', '.join(LOOP_TRIGGERS)}, each once",
        )
    if ("schedule" in triggers) != (p.schedule is not None):
        raise InvalidInput(
            "the schedule trigger and a schedule (cron) go together",
            hint="e.g. triggers drift,schedule with schedule '0 3 * * 1'",
        )
    if p.schedule is not None and (not isinstance(p.schedule, str) or len(p.schedule) > 200):
        raise InvalidInput(f"invalid schedule {p.schedule!r}", hint="use a cron expression")
    if not isinstance(p.params, Mapping):
        raise InvalidInput("policy params must be a mapping of step.key to value")
    for key, value in p.params.items():
        if not isinstance(key, str) or not _PARAM.match(key):
            raise InvalidInput(f"invalid pipeline parameter {key!r}", hint="use step.key")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"pipeline parameter {key} must be a plain value, got {value!r}")
    if p.data_param is not None and (
        not isinstance(p.data_param, str) or not _PARAM.match(p.data_param)
    ):
        raise InvalidInput(f"invalid data parameter {p.data_param!r}", hint="e.g. ingest.source")
    if not isinstance(p.target, str) or not p.target or len(p.target) > 250:
        raise InvalidInput(f"invalid target column {p.target!r}")
    if (
        isinstance(p.min_labels, bool)
        or not isinstance(p.min_labels, int)
        or not (1 <= p.min_labels <= 10_000_000)
    ):
        raise InvalidInput(f"min_labels must be a whole number from 1, got {p.min_labels!r}")
    if (
        isinstance(p.tolerance, bool)
        or not isinstance(p.tolerance, (int, float))
        or not (math.isfinite(p.tolerance) and 0 <= p.tolerance <= 10)
    ):
        raise InvalidInput(f"tolerance must be a number from 0 to 10, got {p.tolerance!r}")
    _seconds("the retrain cooldown", p.retrain_cooldown_s, 0)
    return p


def policy_json(p: LoopPolicy | None) -> str | None:
    if p is None:
        return None
    data = asdict(p)
    data["triggers"] = list(p.triggers)
    data["params"] = dict(p.params)
    return json.dumps(data, sort_keys=True)


def policy_from_json(text: str | None) -> LoopPolicy | None:
    if not text:
        return None
    data = json.loads(text)
    known = {f.name for f in fields(LoopPolicy)}
    data = {k: v for k, v in data.items() if k in known}
    data["triggers"] = tuple(data.get("triggers", ()))
    return LoopPolicy(**data)


def thresholds_json(t: MonitorThresholds) -> str:
    return json.dumps(asdict(t), sort_keys=True)


def thresholds_from_json(text: str) -> MonitorThresholds:
    known = {f.name for f in fields(MonitorThresholds)}
    return MonitorThresholds(**{k: v for k, v in json.loads(text).items() if k in known})


def validate_alert(kind: object, key: object, severity: object, message: object) -> None:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise InvalidInput(
            f"invalid alert kind {kind!r}", hint="lowercase letters, digits, _ . - (e.g. drift)"
        )
    if not isinstance(key, str) or not key or len(key) > 250:
        raise InvalidInput(f"invalid alert key {key!r}: 1 to 250 characters")
    if severity not in SEVERITIES:
        raise InvalidInput(f"invalid severity {severity!r}", hint=f"use {', '.join(SEVERITIES)}")
    if not isinstance(message, str) or len(message) > MAX_MESSAGE:
        raise InvalidInput(f"the alert message must be text of at most {MAX_MESSAGE} characters")


def validate_status(status: object, allowed: tuple[str, ...] = ALERT_STATUSES) -> str:
    if status not in allowed:
        raise InvalidInput(f"invalid alert status {status!r}", hint=f"use {', '.join(allowed)}")
    return str(status)


def payload_json(payload: Mapping[str, Any] | None) -> str | None:
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"the alert payload must be a mapping, got {type(payload).__name__}")
    try:
        return json.dumps(dict(payload), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"the alert payload is not JSON: {e}") from e
