"""What a scoring server serves: the primary model, an optional canary and shadow.

A plan names models by *address* as the user gave them (``models:/diabetes@champion``,
``runs:/<id>/model``); the server resolves each address itself and re-resolves it when an
alias moves. A server started on a model URI has a fixed plan; one started on a deployment
re-reads its plan from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput

DEPLOYMENTS_SCHEME = "deployments:/"
VARIANTS = ("primary", "canary", "shadow")


@dataclass(frozen=True)
class ServingPlan:
    """Model addresses per variant; ``canary_weight`` is the percent of requests (0-100)
    the canary answers."""

    primary: str
    canary: str | None = None
    canary_weight: int = 0
    shadow: str | None = None
    deployment: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.primary, str) or not self.primary.strip():
            raise InvalidInput("a serving plan needs a primary model address")
        weight = self.canary_weight
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise InvalidInput(
                f"canary weight must be an integer from 0 to 100, got {weight!r}",
                hint="it is the percent of requests the canary answers",
            )
        if weight and self.canary is None:
            raise InvalidInput("a canary weight was given without a canary model")

    def addresses(self) -> dict[str, str]:
        """``variant -> address`` for the variants this plan has."""
        out = {"primary": self.primary}
        if self.canary is not None:
            out["canary"] = self.canary
        if self.shadow is not None:
            out["shadow"] = self.shadow
        return out


def goes_to_canary(request_id: str, weight: int) -> bool:
    """Whether the request with this id is answered by the canary: deterministic per id.

    The last 32 bits of a request id are random (UUIDv7), so their value mod 100 is uniform
    enough (the bias of 2**32 mod 100 is below 1e-7) and costs one int() call."""
    if weight <= 0:
        return False
    if weight >= 100:
        return True
    return int(request_id[-8:], 16) % 100 < weight


def from_deployment(record: Any) -> ServingPlan:
    """The plan of a deployment record (``triptych.deployments.get(name)``)."""
    return ServingPlan(
        primary=record.primary,
        canary=getattr(record, "canary", None),
        canary_weight=int(getattr(record, "canary_weight", 0) or 0)
        if getattr(record, "canary", None)
        else 0,
        shadow=getattr(record, "shadow", None),
        deployment=record.name,
    )


def deployment_name(target: str) -> str | None:
    """``NAME`` for ``deployments:/NAME``, else None."""
    if not target.startswith(DEPLOYMENTS_SCHEME):
        return None
    name = target[len(DEPLOYMENTS_SCHEME) :].strip("/")
    if not name:
        raise InvalidInput(f"no deployment name in {target!r}", hint="use deployments:/NAME")
    return name
