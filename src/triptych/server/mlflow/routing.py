"""The MLflow routes as one table of operations, each a plain function of the request's
arguments, run in the thread pool; errors become MLflow's error bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import TriptychError
from triptych.server.mlflow.errors import invalid, mlflow_error
from triptych.server.permissions import Permission, requires

PREFIX = "/api/2.0/mlflow"
# MLflow's searches are reads sent as POST (a JSON body): a viewer may search
# (tests/test_server_routes.py lists them among the reads with a body).
POST_READ = Permission.READ
Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    """One MLflow endpoint: verb, path under ``/api/2.0/mlflow``, permission, handler."""

    method: str
    path: str
    permission: Permission
    handler: Handler


def json_response(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def error_response(error: TriptychError) -> Response:
    status, body = mlflow_error(error)
    return json_response(status, body)


async def arguments(request: Request) -> dict[str, Any]:
    """GET arguments come in the query string (repeated keys: lists), the others as JSON."""
    args: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in args:
            args[key] = [*args[key], value] if isinstance(args[key], list) else [args[key], value]
        else:
            args[key] = value
    if request.method != "GET":
        raw = await _read(request, request.app.state.settings.max_body)
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise invalid("the request body is not JSON") from None
            if not isinstance(body, dict):
                raise invalid("the request body must be a JSON object")
            args.update(body)
    args.update(request.path_params)
    return args


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused past the server's ``--max-body-size`` before it is all in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise invalid(f"the request body is over {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise invalid(f"the request body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(op: Operation) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            args = await arguments(request)
            result = await run_in_threadpool(op.handler, request.app.state, args)
        except TriptychError as e:
            return error_response(e)
        return json_response(200, result)

    endpoint.__name__ = "mlflow_" + op.handler.__name__
    endpoint.__doc__ = op.handler.__doc__
    return endpoint


def add_to(api: FastAPI | APIRouter) -> None:
    """Add every MLflow route, each with its declared permission, to ``api``. (Routes are
    added to the app itself: the app's route check then sees each one.)"""
    from triptych.server.mlflow import artifacts, models, registry, tracking

    for op in (*tracking.OPERATIONS, *models.OPERATIONS, *registry.OPERATIONS):
        api.add_api_route(
            PREFIX + op.path,
            _endpoint(op),
            methods=[op.method],
            dependencies=[requires(op.permission)],
            name=f"mlflow {op.method} {op.path}",
            tags=["mlflow"],
            include_in_schema=False,  # MLflow's API is described by MLflow's own docs
        )
    artifacts.add_routes(api)
