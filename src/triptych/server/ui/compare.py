"""Runs side by side: params and metrics (differences marked), overlaid metric charts, and
parallel coordinates of the params that differ against one metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import InvalidInput
from triptych.server.ui.runs import metric_charts
from triptych.server.ui.templating import add_page, render

if TYPE_CHECKING:
    from triptych.store.entities import Run

COMPARE_MIN, COMPARE_MAX = 2, 10


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def scale(values: Sequence[str | float | None]) -> list[float | None]:
    """One parallel-coordinates axis in [0, 1]: numbers from the smallest to the largest (a
    constant axis sits at 0.5); anything else spread evenly in sorted order. None stays."""
    present = [v for v in values if v is not None]
    numbers = [v if isinstance(v, float) else _number(v) for v in present]
    if present and all(n is not None for n in numbers):
        finite = [n for n in numbers if n is not None]
        low, high = min(finite), max(finite)
        spread = {
            v: 0.5 if high == low else (n - low) / (high - low)
            for v, n in zip(present, finite, strict=True)
        }
    else:
        levels = sorted({str(v) for v in present})
        step = 1 / (len(levels) - 1) if len(levels) > 1 else 0.0
        spread = {v: (levels.index(str(v)) * step if len(levels) > 1 else 0.5) for v in present}
    return [None if v is None else spread[v] for v in values]


def parallel(runs: Sequence[Run], metric: str | None) -> dict[str, Any] | None:
    """Parallel coordinates of the params that differ between ``runs`` and one metric, each
    axis scaled by :func:`scale`; tooltips show the raw values."""
    keys = sorted({k for r in runs for k in r.params})
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1]
    axes: list[tuple[str, list[str | float | None]]] = [
        (f"params.{k}", [r.params.get(k) for r in runs]) for k in varying
    ]
    if metric:
        axes.append((f"metrics.{metric}", [_finite_or_none(r.metrics.get(metric)) for r in runs]))
    if not axes:
        return None
    scaled = [scale(values) for _, values in axes]
    series = [
        {
            "label": r.name or r.run_id[:8],
            "values": [column[i] for column in scaled],
            "raw": [None if values[i] is None else str(values[i]) for _, values in axes],
        }
        for i, r in enumerate(runs)
    ]
    return {"kind": "parallel", "axes": [name for name, _ in axes], "series": series}


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def compare(
    request: Request,
    run: list[str] = Query([]),
    metric: str | None = Query(None, max_length=250),
) -> Response:
    """2 to 10 runs side by side: params and metrics (differences marked), overlaid metric
    charts, and parallel coordinates of the params against one metric."""
    ids = list(dict.fromkeys(r for r in run if r))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise InvalidInput(
            f"compare needs {COMPARE_MIN} to {COMPARE_MAX} runs, got {len(ids)}",
            hint="tick the runs to compare in the runs table",
        )
    store = request.app.state.store
    chosen = [store.get_run(i) for i in ids]
    metric_keys = sorted({k for r in chosen for k in r.metrics})
    param_keys = sorted({k for r in chosen for k in r.params})
    if metric not in metric_keys:
        metric = metric_keys[0] if metric_keys else None
    return render(
        request,
        "compare.html",
        section="runs",
        runs=chosen,
        param_rows=[
            (k, values, len(set(values)) > 1)
            for k in param_keys
            for values in [[r.params.get(k) for r in chosen]]
        ],
        metric_keys=metric_keys,
        metric=metric,
        charts=metric_charts(store, chosen),
        parallel=parallel(chosen, metric),
    )


def add_routes(app: FastAPI) -> None:
    add_page(app, "/ui/compare", compare)
