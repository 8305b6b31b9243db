"""Administration under ``/api/v1/admin`` (``--auth`` only, admin on ``*``): list users and
tokens, and revoke a token remotely, e.g. one that leaked. Creating users and tokens runs
against the store directly (``triptych server create-admin``, ``user``, ``token``)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from triptych.server.permissions import Permission, requires
from triptych.store.http.codec import dumps

PREFIX = "/api/v1/admin"


async def list_users(request: Request) -> Response:
    """Every user with its roles per project."""
    users = await run_in_threadpool(request.app.state.store.list_users)
    return Response(dumps([asdict(u) for u in users]), media_type="application/json")


async def list_tokens(request: Request, user: str | None = None) -> Response:
    """Every token (of ``user`` if given): ids, owners, expiry, revocation; never secrets."""
    tokens = await run_in_threadpool(request.app.state.store.list_tokens, user)
    return Response(dumps([asdict(t) for t in tokens]), media_type="application/json")


async def revoke_token(request: Request, token_id: str) -> Response:
    """Revoke a token: the next request that carries it is refused."""
    token = await run_in_threadpool(request.app.state.store.revoke_token, token_id)
    return Response(dumps(asdict(token)), media_type="application/json")


def add_routes(app: FastAPI) -> None:
    admin = [requires(Permission.ADMIN)]
    app.add_api_route(
        f"{PREFIX}/users", list_users, methods=["GET"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/tokens", list_tokens, methods=["GET"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/tokens/{{token_id}}/revoke",
        revoke_token,
        methods=["POST"],
        tags=["admin"],
        dependencies=admin,
    )
