"""CSRF protection for the UI's forms: every state-changing UI route declares it.

The mechanism is a double-submit token: :func:`csrf_token` gives the page a random token and
sets it as the ``triptych_csrf`` cookie (SameSite=Strict, HttpOnly); the form sends it back in
a hidden ``csrf_token`` field (htmx: the ``X-CSRF-Token`` header), and :func:`check_csrf`
refuses the request unless field and cookie are present and equal, and an ``Origin`` header,
when the browser sends one, names this server. Another site can make a browser send the
cookie (not with SameSite=Strict in current browsers, but older ones) but cannot read it, so
it cannot put it in the form.

A route declares it with ``dependencies=[requires(...), csrf_protected()]``;
:func:`check_ui_routes` refuses to build an app with a UI route other than GET/HEAD that does
not, the same fail-closed rule as permissions.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import PermissionDenied
from triptych.server.auth import is_ui_path
from triptych.server.permissions import UndeclaredRoute

if TYPE_CHECKING:
    from fastapi import FastAPI

CSRF_COOKIE = "triptych_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM = 64 * 1024


def csrf_token(request: Request) -> str:
    """The token a page puts in its forms: the request's cookie when it has a sound one, else
    a new one (set it with :func:`set_csrf_cookie` on the response)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if len(current) >= 43 else secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


async def form(request: Request) -> dict[str, str]:
    """The request's url-encoded form (last value of each field), read once and kept."""
    cached = getattr(request.state, "form", None)
    if cached is not None:
        return dict(cached)
    fields: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        if len(body) > MAX_FORM:
            raise PermissionDenied("the form is too large")
        for key, values in parse_qs(body.decode("utf-8", "replace")).items():
            fields[key] = values[-1]
    request.state.form = fields
    return dict(fields)


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without the page's CSRF token (403)."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise PermissionDenied(
            "the request comes from another site", hint="submit the form from this server's page"
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or (await form(request)).get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise PermissionDenied(
            "the form's CSRF token is missing or does not match",
            hint="reload the page and submit the form again",
        )


def csrf_protected() -> Any:
    """``dependencies=[..., csrf_protected()]``: what every state-changing UI route declares."""
    return Depends(check_csrf)


def _declares_csrf(route: Any) -> bool:
    return any(d.call is check_csrf for d in route.dependant.dependencies)


def check_ui_routes(app: FastAPI) -> None:
    """Refuse an app with a state-changing UI route that does not check the CSRF token."""
    from fastapi.routing import APIRoute

    missing = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and is_ui_path(route.path)
        and set(route.methods or ()) - SAFE_METHODS
        and not _declares_csrf(route)
    ]
    if missing:
        raise UndeclaredRoute(
            f"state-changing UI routes without CSRF protection: {', '.join(missing)}",
            hint="declare it with dependencies=[requires(...), csrf_protected()]",
        )
