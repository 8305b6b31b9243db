"""What a scoring server counts: Prometheus metrics and per-variant stats for rollbacks.

Each app has its own registry (two servers in one test process do not share counters).
Label children are cached, so counting a request costs a dict lookup and a few locked adds.
With ``--workers N`` each worker process counts its own requests: scrape each, or put the
workers behind one Prometheus job (see docs/serving.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
WINDOW = 2000  # latest latencies per variant kept for the p99


class VariantWindow:
    """Requests, server errors and recent latencies of one variant (thread-safe enough:
    appends to a deque and int adds under the GIL)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=WINDOW)

    def p99_ms(self) -> float:
        values = sorted(self.latencies)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(len(values) * 0.99))]


class Telemetry:
    """Prometheus metrics of one app plus in-memory per-variant stats."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "triptych_requests",
            "Prediction requests answered, by variant and HTTP status.",
            ["variant", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "triptych_request_latency_seconds",
            "Time from the request's arrival to its answer, by variant.",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "triptych_errors",
            "Requests refused or failed, by error code.",
            ["code"],
            registry=self.registry,
        )
        self._version = Gauge(
            "triptych_model_version",
            "Registry version of the model serving each variant (0 for a runs:/ URI).",
            ["variant", "model"],
            registry=self.registry,
        )
        self._p99 = Gauge(
            "triptych_variant_p99_seconds",
            f"p99 latency of the last {WINDOW} requests of each variant.",
            ["variant"],
            registry=self.registry,
        )
        self._variant_errors = Gauge(
            "triptych_variant_errors",
            "Server errors (5xx) of each variant since its model was last set.",
            ["variant"],
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "triptych_shadow_dropped",
            "Shadow copies not scored because the shadow queue was full.",
            registry=self.registry,
        )
        self.predict_calls = Gauge(
            "triptych_predict_calls",
            "Calls of the current model's predict per variant (fewer than requests when "
            "concurrent requests are batched).",
            ["variant"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._windows: dict[str, VariantWindow] = {}
        self._lock = threading.Lock()
        self._versions: dict[str, tuple[str, float]] = {}
        self.extra: list[Callable[[], None]] = []  # refreshers run before each scrape

    def window(self, variant: str) -> VariantWindow:
        found = self._windows.get(variant)
        if found is None:
            with self._lock:
                found = self._windows.setdefault(variant, VariantWindow())
        return found

    def observe(self, variant: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        child = self._children.get((variant, status))
        if child is None:
            child = self._children[(variant, status)] = self._requests.labels(variant, str(status))
        child.inc()
        latency = self._latency_children.get(variant)
        if latency is None:
            latency = self._latency_children[variant] = self._latency.labels(variant)
        latency.observe(seconds)
        w = self.window(variant)
        w.requests += 1
        if status >= 500:
            w.errors += 1
        w.latencies.append(seconds * 1000.0)

    def error(self, code: str) -> None:
        self._errors.labels(code).inc()

    def set_model(self, variant: str, name: str | None, version: int | None) -> None:
        """Record which model serves ``variant`` now; a new model starts a fresh window."""
        label = name or "-"
        old = self._versions.get(variant)
        if old is not None:
            self._version.remove(variant, old[0])
        self._version.labels(variant, label).set(float(version or 0))
        if old != (label, float(version or 0)):
            self._windows[variant] = VariantWindow()
        self._versions[variant] = (label, float(version or 0))

    def drop_variant(self, variant: str) -> None:
        old = self._versions.pop(variant, None)
        if old is not None:
            self._version.remove(variant, old[0])
        self._windows.pop(variant, None)

    def stats(self) -> dict[str, Any]:
        """``variant -> VariantStats`` (requests, errors, p99_ms) since each variant's model
        was last set: what automatic rollback decides on."""
        from triptych.deployments.rollback import VariantStats

        return {
            v: VariantStats(requests=w.requests, errors=w.errors, p99_ms=w.p99_ms())
            for v, w in list(self._windows.items())
        }

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        for variant, w in list(self._windows.items()):
            self._p99.labels(variant).set(w.p99_ms() / 1000.0)
            self._variant_errors.labels(variant).set(w.errors)
        for refresh in self.extra:
            refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
