"""Browser sessions for the UI under ``--auth``: ``/ui/login`` takes an API token and keeps it
in an HttpOnly, SameSite=Strict cookie, which the policy accepts on UI pages only;
``/ui/logout`` drops it. Both forms are CSRF-protected (``server/csrf.py``)."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from triptych.server.auth import SESSION_COOKIE, user_of
from triptych.server.csrf import CSRF_FIELD, csrf_protected, csrf_token, form, set_csrf_cookie
from triptych.server.permissions import Permission, requires
from triptych.store.base import now_ms

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · triptych</title>
<style>body{{font:16px system-ui,sans-serif;max-width:28rem;margin:4rem auto}}
.error{{color:#b00}}input{{width:100%}}</style></head>
<body><main class="login">
<h1>triptych</h1>
{message}
<form method="post" action="/ui/login">
<input type="hidden" name="{field}" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label>API token <input type="password" name="token" autocomplete="off" required autofocus></label>
<button type="submit">Sign in</button>
</form>
<p>An admin creates tokens with <code>triptych server token create NAME</code>.</p>
</main></body></html>
"""


_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/ui/"
    return target


def _page(request: Request, status: int, message: str = "", target: str = "/ui/") -> Response:
    token = csrf_token(request)
    body = _PAGE.format(
        message=f'<p class="error">{escape(message)}</p>' if message else "",
        field=CSRF_FIELD,
        csrf=escape(token),
        next=escape(_next(target)),
    )
    response = HTMLResponse(body, status_code=status, headers=_HEADERS)
    set_csrf_cookie(response, request, token)
    return response


def login_page(request: Request) -> Response:
    return _page(request, 200, target=request.query_params.get("next", "/ui/"))


async def login(request: Request) -> Response:
    fields = await form(request)
    token = fields.get("token", "").strip()
    target = _next(fields.get("next"))
    user = await run_in_threadpool(user_of, request.app.state.store, token)
    if user is None:
        return _page(request, 401, "That token is not valid (unknown, revoked or expired).", target)
    expires = None
    for known in await run_in_threadpool(request.app.state.store.list_tokens, user.name):
        if token.startswith(f"tpt_{known.id}_") and known.expires_at is not None:
            expires = max(1, (known.expires_at - now_ms()) // 1000)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=expires,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def add_routes(app: FastAPI) -> None:
    public = requires(Permission.PUBLIC)  # signing in is how a browser gets a credential
    app.add_api_route(
        "/ui/login", login_page, methods=["GET"], include_in_schema=False, dependencies=[public]
    )
    for path, endpoint in (("/ui/login", login), ("/ui/logout", logout)):
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            include_in_schema=False,
            dependencies=[public, csrf_protected()],
        )
