"""``GET /health``: the process answers (no authentication, no store access)."""

from __future__ import annotations

from fastapi import FastAPI

from triptych.server.permissions import Permission, requires


def health() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the server runs: for load balancers and probes."""
    from triptych import __version__

    return {"status": "ok", "version": __version__}


def add_routes(app: FastAPI) -> None:
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        tags=["health"],
        dependencies=[requires(Permission.PUBLIC)],
    )
