"""The OpenAPI description of the store endpoints, built from the contract's hints.

The store routes read their arguments themselves (see ``routes.store``), so FastAPI cannot see
them; this fills in each operation's parameters, JSON body and answer from the same hints the
codec uses. Built on the first request for ``/openapi.json`` (about half a second), not at
start-up.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from triptych.store.http.routes import ENDPOINTS, Endpoint, is_sequence

if TYPE_CHECKING:
    from fastapi import FastAPI

REF = "#/components/schemas/{model}"
ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "the triptych error class, e.g. NotFound"},
        "message": {"type": "string"},
        "hint": {"type": ["string", "null"], "description": "the one-line fix"},
    },
    "required": ["error", "message"],
}
NOTES = """
Every endpoint of `/api/v1` is one method of triptych's metadata store contract; its
description is the contract's. Arguments named in the path travel in it; the others in the
query string (GET, DELETE) or as one JSON object. Non-finite floats travel as the strings
`"NaN"`, `"Infinity"` and `"-Infinity"`. Errors answer with the status of the error class
(404 NotFound, 409 AlreadyExists/Conflict, 400 InvalidInput, 403 PermissionDenied, 503
StoreUnavailable) and the body `{"error", "message", "hint"}`.
"""


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that describes the store endpoints fully."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=(app.description or "") + NOTES,
                routes=app.routes,
            )
            describe(schema)
            if app.state.settings.auth:
                secure(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def secure(schema: dict[str, Any], routes: list[Any]) -> None:
    """Declare the bearer token (``--auth``): /docs then offers "Authorize" for a token."""
    from triptych.server.permissions import Permission, permission_of

    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["token"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "a triptych API token (tpt_…): triptych server token create NAME",
    }
    schema["security"] = [{"token": []}]
    public = {getattr(r, "path", "") for r in routes if permission_of(r) is Permission.PUBLIC}
    for path, operations in schema.get("paths", {}).items():
        if path in public:
            for operation in operations.values():
                operation["security"] = []
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault(
                "401", {"description": "no token, or an unknown, revoked or expired one"}
            )


def describe(schema: dict[str, Any]) -> None:
    """Add parameters, bodies and answers of every store endpoint to ``schema``."""
    from pydantic import TypeAdapter

    defs: dict[str, Any] = {}

    def of(hint: Any) -> dict[str, Any]:
        found = TypeAdapter(hint).json_schema(ref_template=REF)
        defs.update(found.pop("$defs", {}))
        return found

    for endpoint in ENDPOINTS:
        operation = schema["paths"][endpoint.url_path][endpoint.verb.lower()]
        parameters, body = _arguments(endpoint, of)
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = {
                "required": bool(body.get("required")),
                "content": {"application/json": {"schema": body}},
            }
        operation["responses"] = {
            "200": {
                "description": "what the store method returns",
                "content": {"application/json": {"schema": of(endpoint.hints["return"])}},
            },
            "4XX": {"description": "a triptych error", "content": _error_content()},
            "5XX": {
                "description": "the store is unavailable, or a bug",
                "content": _error_content(),
            },
        }
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR}}


def _arguments(endpoint: Endpoint, of: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    parameters: list[dict[str, Any]] = []
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in endpoint.signature.parameters.values():
        if p.name == "self":
            continue
        hint = endpoint.hints[p.name]
        needed = p.default is inspect.Parameter.empty
        if p.name in endpoint.path_args:
            parameters.append({"name": p.name, "in": "path", "required": True, "schema": of(hint)})
        elif endpoint.in_query:
            parameters.append(
                {
                    "name": p.name,
                    "in": "query",
                    "required": needed and not is_sequence(hint),
                    "schema": of(hint),
                    **({"explode": True} if is_sequence(hint) else {}),
                }
            )
        else:
            properties[p.name] = of(hint)
            if needed:
                required.append(p.name)
    if endpoint.in_query:
        return parameters, None
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    return parameters, body
