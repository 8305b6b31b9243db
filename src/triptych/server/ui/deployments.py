"""Pages of deployments and their monitoring: the traffic split (primary, canary weight,
shadow), the deployment's audit trail, and, when a monitor watches it, drift and live
performance over time, the alerts and the closed loop's actions.

The monitoring data is :func:`triptych.monitoring.report.gather`'s, the same the HTML
report of ``triptych monitor report`` draws, so the page and the report cannot disagree.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import NotFound
from triptych.server.ui.context import client
from triptych.server.ui.templating import add_page, render

MAX_COLUMN_LINES = 6  # drift lines per chart: the features that moved most
CHECKS_SHOWN = 50  # the latest checks drawn


def deployments(request: Request) -> Response:
    """Every deployment with what it serves and the share of the canary."""
    store = request.app.state.store
    items = store.list_deployments()
    monitored = {m.name for m in store.list_monitors()}
    return render(
        request, "deployments.html", section="deployments", deployments=items, monitored=monitored
    )


def drift_charts(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """Share of drifted features per check, and the PSI of the features that moved most."""
    checks = drift.get("checks") or []
    if not checks:
        return []
    labels = [c["label"] for c in checks]
    charts: list[dict[str, Any]] = [
        {
            "kind": "category",
            "title": "share of features drifted",
            "labels": labels,
            "y": "share",
            "series": [{"label": "drifted share", "values": [c["drifted_share"] for c in checks]}],
            "threshold": (drift.get("thresholds") or {}).get("drift_share"),
        }
    ]
    columns = drift.get("columns") or {}

    def peak(name: str) -> float:
        return max((v for v in columns[name]["psi"] if v is not None), default=0.0)

    moved = sorted(columns, key=lambda n: (-peak(n), n))[:MAX_COLUMN_LINES]
    if moved:
        charts.append(
            {
                "kind": "category",
                "title": "PSI per feature (the most moved)",
                "labels": labels,
                "y": "PSI",
                "series": [{"label": n, "values": columns[n]["psi"]} for n in moved],
                "threshold": (drift.get("thresholds") or {}).get("psi"),
            }
        )
    return charts


def performance_chart(performance: dict[str, Any]) -> dict[str, Any] | None:
    """The live metric per window and model version (labels joined to predictions)."""
    windows = performance.get("windows") or []
    if not windows:
        return None
    labels = sorted({w["label"] for w in windows})
    series = []
    for version in performance.get("versions") or [None]:
        values = {w["label"]: w["live"] for w in windows if w["model_version"] == version}
        series.append(
            {
                "label": f"v{version}" if version is not None else "live",
                "values": [values.get(label) for label in labels],
            }
        )
    direction = "lower is better" if performance.get("lower_is_better") else "higher is better"
    return {
        "kind": "category",
        "title": f"live {performance.get('metric')} ({direction})",
        "labels": labels,
        "y": str(performance.get("metric")),
        "series": series,
        "threshold": None,
    }


def deployment(request: Request, name: str, last: int = Query(CHECKS_SHOWN, ge=1)) -> Response:
    """One deployment: traffic split, trail, and its monitoring when it has a monitor."""
    from triptych.monitoring import report

    store = request.app.state.store
    found = store.get_deployment(name)
    history = list(reversed(store.deployment_history(name, limit=100)))
    try:
        data: dict[str, Any] | None = report.gather(name, last=last, client=client(request))
    except NotFound:
        data = None  # no monitor yet: the deployment alone
    weight = found.canary_weight if found.canary else 0
    return render(
        request,
        "deployment.html",
        section="deployments",
        deployment=found,
        history=history,
        primary_share=100 - weight,
        canary_share=weight,
        report=data,
        drift_charts=drift_charts(data["drift"]) if data else [],
        performance=performance_chart(data["performance"]) if data else None,
    )


def add_routes(app: FastAPI) -> None:
    add_page(app, "/ui/deployments", deployments)
    add_page(app, "/ui/deployments/{name:path}", deployment)
