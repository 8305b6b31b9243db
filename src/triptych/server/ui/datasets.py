"""Pages of datasets: the datasets, and one dataset with its versions, the schema new data is
checked against, a version's profile (a histogram per column) and its lineage (the runs that
used those bytes, under any name, and the model versions trained by them)."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from triptych.server.ui.templating import add_page, render

MAX_HISTOGRAMS = 40  # columns drawn; the profile table lists them all
MAX_LINEAGE = 200  # runs listed per version


def datasets(request: Request) -> Response:
    items = request.app.state.store.list_datasets()
    return render(request, "datasets.html", section="datasets", datasets=items)


def histograms(profile: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A bar chart per profiled column: bins of numbers, the most frequent values otherwise."""
    charts = []
    for name, column in list(((profile or {}).get("columns") or {}).items())[:MAX_HISTOGRAMS]:
        histogram = column.get("histogram") or {}
        top = column.get("top")
        if histogram.get("counts"):
            edges = histogram["edges"]
            labels = [f"{(a + b) / 2:.3g}" for a, b in itertools.pairwise(edges)]
            counts = histogram["counts"]
        elif top:
            labels, counts = [str(v) for v, _ in top], [c for _, c in top]
        else:
            continue
        charts.append(
            {
                "kind": "bars",
                "title": name,
                "labels": labels,
                "series": [{"label": "rows", "values": counts}],
            }
        )
    return charts


def dataset(request: Request, name: str, version: int | None = Query(None, ge=1)) -> Response:
    """A dataset: versions (newest first), schema, one version's profile and lineage
    (``?version=``, the latest by default)."""
    store = request.app.state.store
    found = store.get_dataset(name)
    versions = store.list_dataset_versions(name)
    chosen = store.get_dataset_version(name, version)
    run_ids = store.runs_with_input(chosen.digest)[:MAX_LINEAGE]
    runs = []
    for run_id in run_ids:
        try:
            runs.append(store.get_run(run_id))
        except Exception:  # a run purged since: the lineage keeps its id only
            continue
    models = store.model_versions_of_runs(run_ids) if run_ids else []
    return render(
        request,
        "dataset.html",
        section="datasets",
        dataset=found,
        versions=list(reversed(versions)),
        chosen=chosen,
        schema=((found.schema or {}).get("columns") or {}),
        profile=((chosen.profile or {}).get("columns") or {}),
        charts=histograms(dict(chosen.profile) if chosen.profile else None),
        runs=runs,
        models=models,
        same_bytes=[
            v for v in store.versions_with_digest(chosen.digest) if v != (name, chosen.version)
        ],
    )


def add_routes(app: FastAPI) -> None:
    add_page(app, "/ui/datasets", datasets)
    add_page(app, "/ui/datasets/{name:path}", dataset)
