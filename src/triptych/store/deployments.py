"""The deployment half of the metadata store contract (mixed into ``MetadataStore``).

A deployment is a named, revisioned spec of what a server serves. Every change is one
transaction that bumps the revision and appends an event to the audit trail; the trail is
append-only and outlives the deployment. Whether a model address resolves is the service's
to check (``triptych.deployments``): the store checks shapes only, so it never depends on
the registry's state at write time.

Unless a method says otherwise, the rules of :mod:`triptych.store.base` hold: safe from many
threads and processes, atomic, NotFound for a missing deployment, InvalidInput (nothing
written) for bad values.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from triptych.errors import InvalidInput
from triptych.store.entities import Deployment, DeploymentEvent, DeploymentSpec, Thresholds

MAX_ADDRESS = 1000
MAX_REASON = 8000
ACTIONS = ("create", "canary", "shadow", "thresholds", "promote", "rollback", "update", "delete")


class DeploymentStore(ABC):
    """Deployments and their audit trail; see the module docstring for the shared rules."""

    @abstractmethod
    def create_deployment(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Create ``name`` at the next revision of its trail (1 for a new name; a name that
        was deleted continues its numbering) with a ``create`` event. Raises AlreadyExists
        when the name is taken (also when two callers race), InvalidInput for a bad name or
        spec (see :func:`validate_spec`)."""

    @abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """The deployment at its current revision. Raises NotFound."""

    @abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abstractmethod
    def update_deployment(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        action: str,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Replace the spec, bump the revision and append the event, in one transaction.

        With ``expected_revision``, the change applies only if the deployment is still at
        that revision, else Conflict and nothing is written: a caller that computed the new
        spec from what it read never overwrites a change it did not see. Without it,
        concurrent writers are serialised (row lock) and each gets its own revision.
        Raises NotFound, InvalidInput, Conflict."""

    @abstractmethod
    def delete_deployment(
        self,
        name: str,
        *,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Delete the deployment; its trail stays, ending with a ``delete`` event.
        Raises NotFound, Conflict (``expected_revision`` as in :meth:`update_deployment`)."""

    @abstractmethod
    def deployment_history(self, name: str, *, limit: int | None = None) -> list[DeploymentEvent]:
        """The audit trail of ``name``, oldest first (the latest ``limit`` events when given),
        also after deletion. Raises NotFound when the name never existed."""


# -- shapes shared by every backend ------------------------------------------------------------
def validate_deployment_name(name: object) -> str:
    """Deployment names appear in URIs (``deployments:/NAME``): the dataset/model name rule."""
    from triptych.store.base import validate_dataset_name

    try:
        return validate_dataset_name(name)
    except InvalidInput as e:
        raise InvalidInput(f"invalid deployment name {name!r}", hint=e.hint) from None


def _address(role: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ADDRESS:
        raise InvalidInput(
            f"invalid {role} model address {value!r}",
            hint="use models:/NAME@alias, models:/NAME/3 or runs:/<run_id>/<path>",
        )
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise InvalidInput(f"the {role} model address {value!r} contains whitespace")
    return value


def validate_thresholds(t: object) -> Thresholds:
    """Error rate a fraction in [0, 1], p99 a positive number of ms, min_requests >= 1."""
    if not isinstance(t, Thresholds):
        raise InvalidInput(f"thresholds must be a Thresholds, got {type(t).__name__}")
    rate, p99, least = t.max_error_rate, t.max_p99_ms, t.min_requests
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1
    ):
        raise InvalidInput(
            f"max error rate {rate!r} is not a fraction", hint="use a number from 0 to 1, e.g. 0.05"
        )
    if p99 is not None and (
        isinstance(p99, bool)
        or not isinstance(p99, (int, float))
        or not math.isfinite(p99)
        or p99 <= 0
    ):
        raise InvalidInput(f"max p99 latency {p99!r} must be a positive number of milliseconds")
    if isinstance(least, bool) or not isinstance(least, int) or least < 1:
        raise InvalidInput(f"min requests {least!r} must be a whole number >= 1")
    return Thresholds(
        None if rate is None else float(rate), None if p99 is None else float(p99), least
    )


def validate_spec(spec: object) -> DeploymentSpec:
    """The spec's shape: addresses are non-empty strings, the weight a whole percent, a weight
    only with a canary, and neither canary nor shadow the primary itself."""
    if not isinstance(spec, DeploymentSpec):
        raise InvalidInput(f"a deployment spec must be a DeploymentSpec, got {type(spec).__name__}")
    primary = _address("primary", spec.primary)
    canary = None if spec.canary is None else _address("canary", spec.canary)
    shadow = None if spec.shadow is None else _address("shadow", spec.shadow)
    weight = spec.canary_weight
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(
            f"canary weight {weight!r} is not a percentage", hint="use a whole number 0-100"
        )
    if weight and canary is None:
        raise InvalidInput(
            f"a canary weight of {weight}% needs a canary",
            hint="give the canary model (--canary URI), or use weight 0",
        )
    if canary == primary:
        raise InvalidInput(f"the canary {canary} is the primary itself")
    if shadow == primary:
        raise InvalidInput(
            f"the shadow {shadow} is the primary itself",
            hint="a shadow scores another model on a copy of the traffic",
        )
    return DeploymentSpec(primary, canary, weight, shadow, validate_thresholds(spec.thresholds))


def validate_action(action: object) -> str:
    if action not in ACTIONS:
        raise InvalidInput(
            f"invalid deployment action {action!r}", hint=f"use {', '.join(ACTIONS)}"
        )
    return str(action)


def validate_reason(reason: object) -> str | None:
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InvalidInput(f"a reason must be text of at most {MAX_REASON} characters")
    return reason


def spec_to_dict(spec: DeploymentSpec) -> dict[str, Any]:
    """The JSON shape of a spec, as stored in the trail and printed by ``--json``."""
    t = spec.thresholds
    return {
        "primary": spec.primary,
        "canary": spec.canary,
        "canary_weight": spec.canary_weight,
        "shadow": spec.shadow,
        "thresholds": {
            "max_error_rate": t.max_error_rate,
            "max_p99_ms": t.max_p99_ms,
            "min_requests": t.min_requests,
        },
    }


def spec_from_dict(data: Mapping[str, Any]) -> DeploymentSpec:
    t = data.get("thresholds") or {}
    return DeploymentSpec(
        primary=data["primary"],
        canary=data.get("canary"),
        canary_weight=int(data.get("canary_weight") or 0),
        shadow=data.get("shadow"),
        thresholds=Thresholds(
            t.get("max_error_rate"), t.get("max_p99_ms"), int(t.get("min_requests", 50))
        ),
    )


def details_json(details: Mapping[str, Any] | None) -> str | None:
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise InvalidInput(f"event details must be a mapping, got {type(details).__name__}")
    try:
        return json.dumps(dict(details), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"event details are not JSON: {e}") from e
