"""Rendering pages: one Jinja2 environment (autoescaping on), its filters, and the error page.

Templates live in ``templates/`` next to this module and are loaded from the package, so an
installed wheel renders the same pages as a checkout.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from triptych.errors import TriptychError, http_status
from triptych.server.permissions import Permission, requires

if TYPE_CHECKING:
    import jinja2

Endpoint = Callable[..., Response]

# Defence in depth behind the escaping: scripts only from the app itself (the pages have no
# inline script; chart data is JSON that never runs), no framing, no plugins, forms and
# links only back here. Inline styles stay allowed (a few width attributes, htmx's own).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: compiled templates are cached by Jinja2 itself."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("triptych.server.ui", "templates"),
        autoescape=True,  # every template, whatever its name: user text is never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["number"] = number
    env.filters["duration"] = duration
    env.filters["short"] = short
    env.filters["bytes"] = size
    env.filters["pretty"] = pretty
    env.globals["store_label"] = store_label
    env.globals["query"] = query
    return env


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus ``request`` and ``partial``)."""
    partial = request.headers.get("HX-Request") == "true"
    html = environment().get_template(template).render(request=request, partial=partial, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(request: Request, error: TriptychError) -> HTMLResponse:
    """The page for a triptych error: its status, its message and its hint, escaped."""
    status = http_status(error)
    return render(request, "error.html", status, status=status, error=error)


def add_page(app: FastAPI, path: str, endpoint: Endpoint) -> None:
    """Serve ``endpoint`` as the page ``GET path``, which needs the ``read`` permission (the
    UI is read-only). A triptych error (unknown run, bad filter) renders the error page in
    HTML with the status of the one table, rather than the API's JSON answer."""

    @functools.wraps(endpoint)
    def answer(request: Request, **kwargs: Any) -> Response:
        try:
            return endpoint(request, **kwargs)
        except TriptychError as e:
            return error_page(request, e)

    app.add_api_route(
        path,
        answer,
        methods=["GET"],
        response_class=HTMLResponse,
        include_in_schema=False,
        name=f"ui.{endpoint.__name__}",
        dependencies=[requires(Permission.READ)],
    )


# -- filters ----------------------------------------------------------------------------------
def when(ms: int | None) -> str:
    """``2026-12-04 09:30:12`` (UTC) or ``-``."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def number(value: Any) -> str:
    """Metrics at a glance: 4 significant digits, thousands grouped, NaN as ``NaN``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.4g}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def duration(run: Any) -> str:
    """How long a run took (``1.2 s``, ``3 min``), or ``-`` while it runs."""
    if not run.end_time or not run.start_time:
        return "-"
    seconds = (run.end_time - run.start_time) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def short(digest: str | None, length: int = 12) -> str:
    """The first characters of a digest or id."""
    return (digest or "-")[:length]


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def pretty(value: Any) -> str:
    """A JSON-able value as indented JSON (details of audit events, payloads)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def store_label(request: Request) -> str:
    """The store's address without credentials, for the header."""
    from triptych.uris import redact

    return redact(request.app.state.store.url)


def query(request: Request, **changes: Any) -> str:
    """The current page's query string with ``changes`` (None or ``""`` drops a key)."""
    from urllib.parse import urlencode

    params = dict(request.query_params)
    params.update(changes)
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else "?"
