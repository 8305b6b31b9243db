"""The metadata store contract under ``/api/v1``: one route per entry of the endpoint table.

Each route reads its arguments (path, then query string or JSON body) by the contract
method's hints, calls the app's store in the thread pool (the store is synchronous and
thread-safe), and answers with the encoded result. Argument checks are the store's own, so an
answer over HTTP is the answer the store gives locally.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import InvalidInput
from triptych.server import paths
from triptych.server.permissions import requires
from triptych.store.http.codec import check, decode, dumps, loads
from triptych.store.http.routes import ENDPOINTS, Endpoint, from_query, is_sequence


def add_routes(app: FastAPI) -> None:
    """Add every endpoint of the table to ``app``."""
    paths.register_segment()
    for endpoint in ENDPOINTS:
        doc = inspect.getdoc(endpoint.contract) or ""
        path = endpoint.url_path
        for name in endpoint.path_args:
            path = path.replace("{" + name + "}", "{" + name + ":" + paths.SEGMENT + "}")
        app.add_api_route(
            path,
            _handler(endpoint),
            methods=[endpoint.verb],
            name=endpoint.method,
            summary=endpoint.method.replace("_", " "),
            description=doc,
            tags=[endpoint.path.split("/")[1]],
            dependencies=[requires(endpoint.permission)],
            response_class=Response,
        )


def _handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    hints = endpoint.hints
    returns = hints["return"]
    params = [p for p in endpoint.signature.parameters.values() if p.name != "self"]
    names = {p.name for p in params}
    path_args = set(endpoint.path_args)

    async def handle(request: Request) -> Response:
        arguments: dict[str, Any] = {
            name: from_query(
                hints[name], [paths.argument(request.scope, request.path_params[name])]
            )
            for name in path_args
        }
        if endpoint.in_query:
            query = request.query_params
            for p in params:
                values = query.getlist(p.name)
                if values and p.name not in path_args:
                    arguments[p.name] = from_query(hints[p.name], values)
        else:
            raw = await _read(request, request.app.state.settings.max_body)
            arguments.update(_body(raw, hints, names - path_args))
        for p in params:
            if p.name not in arguments and p.default is inspect.Parameter.empty:
                if endpoint.in_query and is_sequence(hints[p.name]):
                    arguments[p.name] = []  # an empty repeated argument is absent
                else:
                    raise InvalidInput(f"missing argument {p.name!r}")
        for name, value in arguments.items():  # a 400 naming the argument, not a 500 later
            check(hints[name], value, f"argument {name!r}")
        policy = request.app.state.policy
        check_call = getattr(policy, "check_call", None)
        if check_call is not None:  # a decision that needs the arguments (project grants)
            await run_in_threadpool(check_call, request, endpoint.method, arguments)
        identity = getattr(policy, "identity", None)
        if identity is not None:  # who acts is who authenticated (--auth)
            arguments = identity(request, arguments)
        store = request.app.state.store
        call = functools.partial(getattr(store, endpoint.method), **arguments)
        result = await run_in_threadpool(call)
        filter_result = getattr(request.app.state.policy, "filter_result", None)
        if filter_result is not None:  # a list a project-scoped user sees part of
            result = filter_result(request, endpoint.method, result)
        return Response(dumps(result, returns), media_type="application/json")

    handle.__name__ = endpoint.method
    return handle


async def _read(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes before it is all in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> InvalidInput:
    return InvalidInput(
        f"the request body is over {limit:,} bytes ({size:,} so far)",
        hint="send smaller batches, or raise the server's limit",
    )


def _body(raw: bytes, hints: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = loads(raw)
    except ValueError as e:
        raise InvalidInput(f"the request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object of arguments")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"unknown argument(s): {', '.join(unknown)}")
    return {k: decode(hints[k], v) for k, v in data.items()}
