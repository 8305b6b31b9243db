"""The UI's static files, served from the package: the stylesheet and the vendored
libraries (htmx, Chart.js). Nothing is loaded from a CDN.

Only files listed at start are served (no path from the request reaches the file system),
with a long cache lifetime keyed to the package version in the ``ETag``.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import NotFound
from triptych.server.permissions import Permission, requires

_TYPES = {".js": "text/javascript", ".css": "text/css", ".md": "text/markdown"}


@functools.lru_cache(maxsize=1)
def files() -> dict[str, tuple[bytes, str, str]]:
    """``name → (bytes, media type, etag)`` of every file the UI serves."""
    found: dict[str, tuple[bytes, str, str]] = {}
    roots = (
        ("", resources.files("triptych.server.ui") / "static"),
        ("vendor/", resources.files("triptych") / "static" / "vendor"),
    )
    for prefix, root in roots:
        for entry in root.iterdir():
            suffix = Path(entry.name).suffix
            if entry.is_file() and suffix in (".js", ".css"):
                data = entry.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                found[prefix + entry.name] = (data, _TYPES[suffix], etag)
    return found


def static(request: Request, name: str) -> Response:
    """One static file, or 404; ``If-None-Match`` answers 304."""
    entry = files().get(name)
    if entry is None:
        raise NotFound(f"no static file {name!r}")
    data, media_type, etag = entry
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def add_routes(app: FastAPI) -> None:
    # Static files need ``read`` like the pages: the route-coverage test allows only /health
    # and the API description to be public, and whoever may see the pages may load their assets.
    app.add_api_route(
        "/ui/static/{name:path}",
        static,
        methods=["GET"],
        include_in_schema=False,
        name="ui.static",
        dependencies=[requires(Permission.READ)],
    )
