"""Pages of pipelines: the pipelines that ran, and one pipeline's DAG with each step's status
and cache state in its last run, read as ``triptych pipeline show NAME`` reads them (the
graph recorded with the run, never a file traced on the server)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import NotFound
from triptych.server.ui.context import client
from triptych.server.ui.templating import add_page, render

BOX_W, BOX_H, GAP_X, GAP_Y = 160, 54, 44, 22  # the DAG's layout, in SVG pixels
TOP = 40  # room above the boxes for edges that skip a column


def pipelines(request: Request) -> Response:
    """Every pipeline that ran, with its last run, newest first."""
    from triptych.pipelines import history
    from triptych.pipelines.runner import TAG_FILE, TAG_PIPELINE

    rows = [
        (r.tags[TAG_PIPELINE], r.tags.get(TAG_FILE, ""), r) for r in history.known(client(request))
    ]
    return render(request, "pipelines.html", section="pipelines", rows=rows)


def layout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Boxes and edges of the DAG: a step one column right of its deepest upstream step."""
    level: dict[str, int] = {}
    for s in steps:  # the recorded graph lists steps in a topological order
        level[s["name"]] = 1 + max((level[u] for u in s["upstream"] if u in level), default=-1)
    rows: dict[int, int] = {}
    boxes = {}
    for s in steps:
        col = level[s["name"]]
        row = rows.get(col, 0)
        rows[col] = row + 1
        boxes[s["name"]] = {"x": col * (BOX_W + GAP_X), "y": TOP + row * (BOX_H + GAP_Y)}
    edges = []
    for s in steps:
        for u in s["upstream"]:
            if u not in boxes:
                continue
            a, b = boxes[u], boxes[s["name"]]
            if a["y"] == b["y"] and b["x"] - a["x"] > BOX_W + GAP_X:
                # past the boxes between them: an arc over the row, top centre to top centre
                x1, x2 = a["x"] + BOX_W / 2, b["x"] + BOX_W / 2 - 12
                lift = min(TOP - 4, 14 + (b["x"] - a["x"]) / 30)
                d = f"M{x1},{a['y']} C{x1},{a['y'] - lift} {x2},{b['y'] - lift} {x2},{b['y']}"
            else:
                x1, y1, x2, y2 = a["x"] + BOX_W, a["y"] + BOX_H / 2, b["x"], b["y"] + BOX_H / 2
                d = f"M{x1},{y1} C{x1 + 25},{y1} {x2 - 25},{y2} {x2},{y2}"
            edges.append(d)
    width = (max(level.values(), default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = TOP + max(rows.values(), default=1) * (BOX_H + GAP_Y) - GAP_Y
    return {
        "boxes": boxes,
        "edges": edges,
        "width": width,
        "height": height,
        "w": BOX_W,
        "h": BOX_H,
    }


def pipeline(request: Request, name: str) -> Response:
    """The DAG of the pipeline ``name`` as its last run recorded it."""
    from triptych.pipelines import history
    from triptych.pipelines.runner import PIPELINE_ARTIFACT

    c = client(request)
    run = history.last_run(c, name)
    if run is None:
        raise NotFound(f"no pipeline {name!r} has run", hint="see the pipelines at /ui/pipelines")
    graph = json.loads(c.read_artifact(run.run_id, PIPELINE_ARTIFACT))
    view = history.PipelineView(name, graph, run, history.step_runs(c, run))
    steps = []
    for s in graph["steps"]:
        status, cache = view.step_status(s["name"])
        steps.append({**s, "status": status, "cache": cache, "run": view.steps.get(s["name"])})
    return render(
        request,
        "pipeline.html",
        section="pipelines",
        name=name,
        run=run,
        steps=steps,
        dag=layout(graph["steps"]),
    )


def add_routes(app: FastAPI) -> None:
    add_page(app, "/ui/pipelines", pipelines)
    add_page(app, "/ui/pipelines/{name:path}", pipeline)
