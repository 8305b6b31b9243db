"""The API description: ``/openapi.json`` and the interactive page at ``/docs``.

Added here rather than by FastAPI itself so that these routes declare a permission too. The
page's Swagger UI is served from the package (``triptych/static/vendor/swagger-ui/``, under
``/docs/assets/…``): nothing is loaded from a CDN, and the online validator is switched off.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from triptych.errors import NotFound
from triptych.server.permissions import Permission, requires

OPENAPI_PATH = "/openapi.json"
ASSETS = "/docs/assets"
_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_PATH,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url="data:,",
        swagger_ui_parameters={"validatorUrl": None},  # else it asks validator.swagger.io
    )


@functools.lru_cache(maxsize=len(_FILES))
def _asset(name: str) -> tuple[bytes, str]:
    data = (resources.files("triptych") / "static" / "vendor" / "swagger-ui" / name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def asset(request: Request, name: str) -> Response:
    """One of Swagger UI's two files (no path from the request reaches the file system)."""
    if name not in _FILES:
        raise NotFound(f"no docs asset {name!r}")
    data, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=_FILES[name], headers=headers)


def add_routes(app: FastAPI) -> None:
    for path, endpoint in (
        (OPENAPI_PATH, openapi),
        ("/docs", docs),
        (f"{ASSETS}/{{name}}", asset),  # public like the page: the same for every install
    ):
        app.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            include_in_schema=False,
            dependencies=[requires(Permission.PUBLIC)],
        )
