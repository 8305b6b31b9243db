"""Pages of experiments and runs: the runs table and a run (runs side by side: compare.py).

The routes read the store on ``request.app.state`` and shape what it returns for the
templates (columns, chart series); the filter language and paging are the store's own
(``triptych.store.search``), so the page filters exactly as ``triptych runs list`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from triptych.errors import InvalidInput, NotFound, TriptychError
from triptych.server.ui.templating import add_page, render

if TYPE_CHECKING:
    from triptych.store.base import MetadataStore
    from triptych.store.entities import ArtifactEntry, Run

PAGE_SIZES = (25, 50, 100, 200)  # offered; any size from 1 to MAX_PAGE is served
MAX_PAGE = 200
MAX_COLUMNS = 12  # params or metrics shown as columns; the run page shows them all
MAX_CHARTS = 24  # metric histories read for one page
MAX_ARTIFACTS = 500
PREVIEW_BYTES = 64 * 1024  # the largest preview; bigger files show their first 64 KB
PREVIEW_MAX_FILE = 16 * 1024 * 1024  # files larger than this are not read at all
TEXT_SUFFIXES = (
    ".txt", ".json", ".yaml", ".yml", ".md", ".csv", ".tsv", ".log", ".py", ".toml", ".diff",
    ".cfg", ".ini", ".html", ".sql", ".sh", ".r", ".xml",
)  # fmt: skip


def _store(request: Request) -> MetadataStore:
    store: MetadataStore = request.app.state.store
    return store


def home(request: Request) -> Response:
    """The UI's front door: the experiments."""
    return RedirectResponse("/ui/experiments", status_code=307)


def experiments(request: Request) -> Response:
    """Every active experiment, oldest first, with a link to its runs."""
    items = _store(request).list_experiments()
    return render(request, "experiments.html", section="runs", experiments=items)


# -- the runs table -----------------------------------------------------------------------------
def sort_order(order: str) -> tuple[str, str]:
    """``"metrics.mse DESC"`` → ``("metrics.mse", "DESC")``; ``""`` → newest first."""
    parts = order.split()
    if not parts:
        return "start_time", "DESC"
    key = " ".join(parts[:-1]) if parts[-1].upper() in ("ASC", "DESC") else " ".join(parts)
    direction = parts[-1].upper() if parts[-1].upper() in ("ASC", "DESC") else "ASC"
    return key, direction


def columns(runs: Sequence[Run], limit: int = MAX_COLUMNS) -> tuple[list[str], list[str]]:
    """The param and metric keys of a page of runs, most common first, then by name."""

    def keys(maps: Sequence[Any]) -> list[str]:
        counts: dict[str, int] = {}
        for mapping in maps:
            for key in mapping:
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts, key=lambda k: (-counts[k], k))[:limit]

    return keys([r.params for r in runs]), keys([r.metrics for r in runs])


def order_key(key: str) -> str:
    """A column key as the ordering language writes it (backticks for odd characters)."""
    entity, _, name = key.partition(".")
    if name and not all(c.isalnum() or c in "_-./:" for c in name):
        return f"{entity}.`{name}`"
    return key


def runs(
    request: Request,
    experiment_id: str,
    filter: str = Query("", max_length=4000),
    order: str = Query("", max_length=500),
    page_token: str | None = Query(None, max_length=2000),
    size: int = Query(50),
    page: int = Query(1, ge=1, le=1_000_000),
) -> Response:
    """The runs of one experiment: filtered, ordered, one page at a time (htmx swaps only
    the table). A bad filter shows the store's one-line error with status 400."""
    store = _store(request)
    experiment = store.get_experiment(experiment_id)
    size = min(max(size, 1), MAX_PAGE)
    key, direction = sort_order(order)
    context: dict[str, Any] = {
        "section": "runs",
        "experiment": experiment,
        "filter": filter,
        "order": order,
        "sort_key": key,
        "sort_dir": direction,
        "size": size,
        "sizes": sorted({*PAGE_SIZES, size}),
        "page_token": page_token,
        "page": page if page_token else 1,
        "error": None,
        "runs": [],
        "next_token": None,
        "params": [],
        "metrics": [],
        "order_key": order_key,
    }
    status = 200
    try:
        found = store.search_runs(
            [experiment_id],
            filter.strip(),
            order_by=[order] if order.strip() else (),
            max_results=size,
            page_token=page_token or None,
        )
    except InvalidInput as e:
        context["error"] = e
        status = 400
    else:
        context["runs"] = found.items
        context["next_token"] = found.next_page_token
        context["params"], context["metrics"] = columns(found.items)
    template = "runs_table.html" if _partial(request) else "runs.html"
    return render(request, template, status, **context)


def _partial(request: Request) -> bool:
    """An htmx request for a part of the page (not a history restore, which wants it all)."""
    headers = request.headers
    return headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != (
        "true"
    )


# -- one run ------------------------------------------------------------------------------------
def metric_charts(store: MetadataStore, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One chart per metric key with a line per run, for keys logged at more than one step
    in at least one run (a single value is a table cell, not a chart)."""
    keys = sorted({k for run in runs for k in run.metrics})[:MAX_CHARTS]
    charts = []
    for key in keys:
        series = []
        for run in runs:
            if key not in run.metrics:
                continue
            points = [[m.step, _finite(m.value)] for m in store.get_metric_history(run.run_id, key)]
            series.append({"label": run.name or run.run_id[:8], "points": points})
        if any(len(s["points"]) > 1 for s in series):
            charts.append({"kind": "lines", "x": "step", "y": key, "series": series})
    return charts


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def user_tags(run: Run) -> tuple[dict[str, str], dict[str, str]]:
    """The run's tags split into the user's and triptych's own (``triptych.*``)."""
    mine = {k: v for k, v in sorted(run.tags.items()) if not k.startswith("triptych.")}
    system = {k: v for k, v in sorted(run.tags.items()) if k.startswith("triptych.")}
    return mine, system


def previewable(entry: ArtifactEntry) -> bool:
    return (
        not entry.is_dir
        and (entry.size or 0) <= PREVIEW_MAX_FILE
        and entry.path.lower().endswith(TEXT_SUFFIXES)
    )


def run(request: Request, run_id: str) -> Response:
    """A run: params, tags, metrics and their charts, artifacts, and the fingerprint."""
    store = _store(request)
    found = store.get_run(run_id)
    experiment = store.get_experiment(found.experiment_id)
    environment = None
    if found.fingerprint and found.fingerprint.env_digest:
        try:
            environment = store.get_environment(found.fingerprint.env_digest)
        except NotFound:
            environment = None
    artifacts = store.walk_artifacts(run_id)
    mine, system = user_tags(found)
    return render(
        request,
        "run.html",
        section="runs",
        run=found,
        experiment=experiment,
        tags=mine,
        system_tags=system,
        charts=metric_charts(store, [found]),
        artifacts=artifacts[:MAX_ARTIFACTS],
        more_artifacts=max(0, len(artifacts) - MAX_ARTIFACTS),
        previewable=previewable,
        environment=environment,
        models=store.model_versions_of_runs([run_id]),
        parent=_maybe_run(store, found.parent_run_id),
        pipeline=pipeline_of(store, found),
    )


def pipeline_of(store: MetadataStore, run: Run) -> dict[str, Any] | None:
    """The pipeline a run belongs to: its name, and the pipeline run when this is a step."""
    from triptych.pipelines.runner import TAG_PARENT, TAG_PIPELINE, TAG_STEP

    parent_id = run.tags.get(TAG_PARENT)  # on step runs; the pipeline run holds the name
    parent = _maybe_run(store, parent_id) if parent_id else None
    name = run.tags.get(TAG_PIPELINE) or (parent.tags.get(TAG_PIPELINE) if parent else None)
    if not name:
        return None
    return {"name": name, "step": run.tags.get(TAG_STEP), "run": parent}


def _maybe_run(store: MetadataStore, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return store.get_run(run_id)
    except NotFound:
        return None


def preview_text(data: bytes, path: str, truncated: bool) -> str:
    """Bytes as text for a preview: JSON indented when it parses whole, else decoded with
    replacement characters. The template escapes it."""
    text = data.decode("utf-8", errors="replace")
    if path.lower().endswith(".json") and not truncated:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text
    return text


def preview(request: Request, run_id: str, path: str = Query(..., max_length=1000)) -> Response:
    """The first 64 KB of a small text artifact, as an escaped fragment (loaded by htmx when
    its row is opened)."""
    store = _store(request)
    entry = store.get_artifact(run_id, path)
    context: dict[str, Any] = {"entry": entry, "text": None, "note": None}
    artifacts = request.app.state.artifacts
    if not previewable(entry):
        context["note"] = "no preview for this kind of file or size"
    elif artifacts is None or entry.digest is None:
        context["note"] = "the server has no artifact store to read from"
    else:
        try:
            with artifacts.open(entry.digest) as reader:
                data = reader.read(PREVIEW_BYTES + 1)
        except TriptychError as e:
            context["note"] = f"cannot read it: {e.message}"
        else:
            truncated = len(data) > PREVIEW_BYTES
            context["text"] = preview_text(data[:PREVIEW_BYTES], entry.path, truncated)
            context["truncated"] = truncated
    return render(request, "preview.html", **context)


def add_routes(app: FastAPI) -> None:
    add_page(app, "/", home)
    add_page(app, "/ui/", home)
    add_page(app, "/ui/experiments", experiments)
    add_page(app, "/ui/experiments/{experiment_id}/runs", runs)
    add_page(app, "/ui/runs/{run_id}", run)
    add_page(app, "/ui/runs/{run_id}/preview", preview)
