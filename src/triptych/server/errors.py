"""Errors as HTTP answers: the status from the one table in ``triptych.errors``, and a JSON
body ``{"error": class name, "message": ..., "hint": ...}`` that the client turns back into
the same exception."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from triptych import errors
from triptych.errors import TriptychError, http_status

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def error_response(
    status: int, error: str, message: str, hint: str | None = None, **headers: str
) -> Response:
    from triptych.server.accounts import redact_token  # an echoed argument may be a token

    message, hint = redact_token(message), redact_token(hint) if hint else hint
    body = orjson.dumps({"error": error, "message": message, "hint": hint})
    return Response(body, status, headers=headers or None, media_type="application/json")


def _redacted(exc: BaseException) -> str:
    from triptych.server.accounts import redact_token

    return redact_token(str(exc))


def _class_for(status: int) -> str:
    """The triptych error a bare HTTP status stands for (404: NotFound)."""
    for cls, code in errors.HTTP_STATUS:
        if code == status:
            return cls.__name__
    return "InvalidInput" if 400 <= status < 500 else "TriptychError"


async def _triptych(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TriptychError)
    status = http_status(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, _redacted(exc))
    if status == 401:
        return _unauthenticated(request, exc)
    return error_response(status, type(exc).__name__, exc.message, exc.hint)


def _unauthenticated(request: Request, exc: TriptychError) -> Response:
    """401 with ``WWW-Authenticate``; a browser asking for a UI page gets a link to sign in."""
    from html import escape
    from urllib.parse import quote

    from triptych.server.auth import is_ui_path

    headers = {"WWW-Authenticate": 'Bearer realm="triptych"'}
    if is_ui_path(request.url.path) and "text/html" in request.headers.get("accept", ""):
        target = quote(request.url.path, safe="/")
        body = (
            f"<!doctype html><title>Sign in · triptych</title><p>{escape(exc.message)}.</p>"
            f'<p><a href="/ui/login?next={target}">Sign in with an API token</a></p>'
        )
        return Response(body, 401, headers=headers, media_type="text/html")
    return error_response(401, type(exc).__name__, exc.message, exc.hint, **headers)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no endpoint {request.method} {request.url.path}"
        hint = "the API is described at /docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        hint = "the API is described at /docs"
    else:
        message, hint = str(exc.detail), None
    return error_response(
        exc.status_code, _class_for(exc.status_code), message, hint, **(exc.headers or {})
    )


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details: Any = exc.errors()
    first = details[0] if details else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(400, "InvalidInput", f"invalid request: {where}: {first.get('msg')}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(
        500,
        "TriptychError",
        f"internal error of the server: {type(exc).__name__}",
        "the server's log has the traceback; please report it",
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(TriptychError, _triptych)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unexpected)
