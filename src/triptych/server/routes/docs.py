"""The API description: ``/openapi.json`` and the interactive page at ``/docs``.

Added here rather than by FastAPI itself so that these routes declare a permission too.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from triptych.server.permissions import Permission, requires

OPENAPI_PATH = "/openapi.json"


def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{request.app.title} API")


def add_routes(app: FastAPI) -> None:
    for path, endpoint in ((OPENAPI_PATH, openapi), ("/docs", docs)):
        app.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            include_in_schema=False,
            dependencies=[requires(Permission.PUBLIC)],
        )
