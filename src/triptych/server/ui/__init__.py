"""The web UI: server-rendered, read-only pages over the app's store (Jinja2 + htmx +
Chart.js, all served from the package). ``create_app`` adds it with ``ui.add_routes(app)``;
every page and asset needs the ``read`` permission."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def add_routes(app: FastAPI) -> None:
    """Add every page of the UI and its static files to ``app``."""
    from triptych.server.ui import (
        assets,
        compare,
        datasets,
        deployments,
        models,
        pipelines,
        runs,
    )

    for module in (assets, runs, compare, models, deployments, datasets, pipelines):
        module.add_routes(app)
