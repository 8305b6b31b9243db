"""Administration under ``/api/v1/admin`` (``--auth`` only, admin on ``*``): users, their
roles and tokens, for an admin without access to the database (the commands ``triptych server
create-admin``, ``user`` and ``token`` work on the database directly). The admin who acts is
recorded as ``created_by``. A token created here is in the answer once, and nowhere else."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import InvalidInput
from triptych.server import accounts
from triptych.server.permissions import Permission, requires
from triptych.store.auth import ALL_PROJECTS
from triptych.store.http.codec import dumps, loads

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


async def _json(request: Request, allowed: set[str]) -> dict[str, Any]:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise InvalidInput("the request body is over 64 KiB")
    try:
        data = loads(body) if body else {}
    except ValueError as e:
        raise InvalidInput(f"the request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"unknown argument(s): {', '.join(unknown)}")
    return data


def _ok(value: Any) -> Response:
    return Response(dumps(asdict(value)), media_type="application/json")


async def create_user(request: Request) -> Response:
    """``{"name": …, "grants": {project: role}}``: a new user (no token yet)."""
    data = await _json(request, {"name", "grants"})
    grants = data.get("grants") or {}
    if not isinstance(grants, dict):
        raise InvalidInput("grants must be an object of project → role")
    store, actor = request.app.state.store, request.state.user
    made = await run_in_threadpool(lambda: store.create_user(data.get("name"), grants, actor=actor))
    return _ok(made)


async def grant_role(request: Request, name: str) -> Response:
    """``{"role": …, "project": "*"}``: set the user's role on the project."""
    data = await _json(request, {"role", "project"})
    store = request.app.state.store
    user = await run_in_threadpool(
        store.grant_role, name, data.get("role"), data.get("project", ALL_PROJECTS)
    )
    return _ok(user)


async def create_token(request: Request) -> Response:
    """``{"user": …, "label": …, "expires_days": …}``: a new token, ``secret`` shown once."""
    data = await _json(request, {"user", "label", "expires_days"})
    days = data.get("expires_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
        raise InvalidInput("expires_days must be a number of days")
    label = data.get("label")
    store, actor = request.app.state.store, request.state.user
    issued = await run_in_threadpool(
        lambda: accounts.issue_token(
            store, str(data.get("user")), label=label, expires_days=days, actor=actor
        )
    )
    answer = {**asdict(issued.token), "secret": issued.secret}
    return Response(
        dumps(answer), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


def add_routes(app: FastAPI) -> None:
    admin = [requires(Permission.ADMIN)]
    app.add_api_route(
        f"{PREFIX}/users", list_users, methods=["GET"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/tokens", list_tokens, methods=["GET"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/users", create_user, methods=["POST"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/users/{{name}}/roles",
        grant_role,
        methods=["PUT"],
        tags=["admin"],
        dependencies=admin,
    )
    app.add_api_route(
        f"{PREFIX}/tokens", create_token, methods=["POST"], tags=["admin"], dependencies=admin
    )
    app.add_api_route(
        f"{PREFIX}/tokens/{{token_id}}/revoke",
        revoke_token,
        methods=["POST"],
        tags=["admin"],
        dependencies=admin,
    )
