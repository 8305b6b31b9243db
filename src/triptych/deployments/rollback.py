"""When to roll a canary back: a pure decision over per-variant request statistics.

The server keeps a :class:`VariantStats` per variant and calls :func:`decide`; on a reason it
calls ``triptych.deployments.rollback(name, reason=..., actor="auto", expected_revision=...)``.
Keeping the rule pure makes it testable without traffic and identical in every replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from triptych.store.entities import Thresholds

__all__ = ["Thresholds", "VariantStats", "decide"]


@dataclass(frozen=True)
class VariantStats:
    """What one variant (primary or canary) served since the plan was loaded."""

    requests: int
    errors: int  # answers with a 5xx status: the model's failures, not the client's
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def decide(primary: VariantStats, canary: VariantStats, thresholds: Thresholds) -> str | None:
    """The reason to roll the canary back, or None.

    Nothing is decided before the canary has served ``min_requests``. The error rate must be
    above the threshold *and* above the primary's, so that a failure of everything (a bad
    upstream, a broken feature) does not blame the canary; the p99 latency is an absolute
    bound."""
    if canary.requests < thresholds.min_requests:
        return None
    rate = canary.error_rate
    limit = thresholds.max_error_rate
    if limit is not None and rate > limit and rate > primary.error_rate:
        return (
            f"canary error rate {rate:.1%} ({canary.errors}/{canary.requests}) is above the "
            f"threshold {limit:.1%} and the primary's {primary.error_rate:.1%}"
        )
    p99 = thresholds.max_p99_ms
    if p99 is not None and canary.p99_ms > p99:
        return (
            f"canary p99 latency {canary.p99_ms:.1f} ms over {canary.requests} requests is "
            f"above the threshold {p99:g} ms"
        )
    return None
