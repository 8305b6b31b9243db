"""The OpenAPI description of the store endpoints, built from the contract's hints.

The store routes read their arguments themselves (see ``routes.store``), so FastAPI cannot see
them; this fills in each operation's parameters, JSON body and answer from the same hints the
codec uses, and OpenAPI links from the answers of the creating calls to the calls that use
the ids they return (:data:`LINKS`). Built on the first request for ``/openapi.json`` (about
half a second), not at start-up.
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


# Which answer feeds which calls: (creating method, {argument: JSON pointer into its answer},
# the methods that take those arguments). The pointer "" is the whole answer (a bare id); an
# argument "spec.experiment_id" is a field of a body record, "run_ids[]" a one-item list.
# Whether an argument travels in the path, the query or the body follows from ENDPOINTS.
_EXPERIMENT = """get_experiment rename_experiment set_experiment_lifecycle set_experiment_tags
    delete_experiment_tag"""
_RUN = """get_run update_run finish_run set_run_lifecycle log_batch delete_run_tag
    get_metric_history log_inputs record_artifacts list_artifacts walk_artifacts get_artifact"""
_MODEL = """get_registered_model update_registered_model list_model_versions create_model_version
    delete_registered_model_tag model_history"""
_VERSION = """get_model_version update_model_version delete_model_version
    delete_model_version_tag set_model_alias"""
LINKS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("create_experiment", {"experiment_id": ""}, _EXPERIMENT),
    ("create_experiment", {"spec.experiment_id": ""}, "create_run"),
    ("create_run", {"run_id": "/run_id"}, _RUN),
    ("create_run", {"run_ids[]": "/run_id"}, "heartbeat model_versions_of_runs"),
    (
        "create_run",
        {"spec.experiment_id": "/experiment_id", "spec.parent_run_id": "/run_id"},
        "create_run",
    ),
    ("create_run", {"run_id": "/run_id"}, "create_model_version"),
    ("create_registered_model", {"name": "/name"}, _MODEL),
    ("create_model_version", {"name": "/name", "version": "/version"}, _VERSION),
    ("create_model_version", {"name": "/name"}, "get_registered_model"),
)


# What the store checks of some text arguments beyond their type (triptych.store.base), so
# that a request valid by the document is one the store takes: a method's argument, or any
# model name in a /models/{name} path, and any alias.
_NAME = {"minLength": 1, "maxLength": 250, "pattern": r"\S"}  # validate_name
_MODEL_NAME = {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"}  # validate_dataset_name
_ALIAS = {"pattern": r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"}  # validate_alias
_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("create_experiment", "name"): _NAME,
    ("rename_experiment", "new_name"): _NAME,
    ("create_registered_model", "name"): _MODEL_NAME,
    ("rename_registered_model", "new_name"): _MODEL_NAME,
}


def _rule(endpoint: Endpoint, argument: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of a text argument with the store's rule for it, if it has one."""
    if schema != {"type": "string"}:
        return schema
    if argument == "alias":
        return schema | _ALIAS
    if argument == "name" and endpoint.path.startswith("/models/{name}"):
        return schema | _MODEL_NAME
    return schema | _RULES.get((endpoint.method, argument), {})


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
            describe_raw(schema)
            link(schema)
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
    for found in defs.values():
        _closed(found)
    for endpoint in ENDPOINTS:
        operation = schema["paths"][endpoint.url_path][endpoint.verb.lower()]
        _closed(operation.get("requestBody", {}).get("content", {}).get("application/json"))
        _closed(operation["responses"]["200"]["content"]["application/json"])
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)


def _closed(schema: Any) -> None:
    """Close every record (an object schema with named properties) in ``schema``: the server
    refuses unknown arguments and fields (InvalidInput) and answers with exactly the record's
    fields, so a generated request with extra ones is not a valid one."""
    if isinstance(schema, list):
        for item in schema:
            _closed(item)
    elif isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict) and schema.get("type") == "object":
            schema.setdefault("additionalProperties", False)
            for item in schema["properties"].values():
                _closed(item)
        for key in ("schema", "items", "prefixItems", "anyOf", "oneOf", "allOf"):
            _closed(schema.get(key))
        if isinstance(schema.get("additionalProperties"), dict):
            _closed(schema["additionalProperties"])


def link(schema: dict[str, Any]) -> None:
    """Add the :data:`LINKS` to the 200 answers of the creating operations."""
    by_method = {e.method: e for e in ENDPOINTS}

    def operation(method: str) -> dict[str, Any]:
        endpoint = by_method[method]
        found: dict[str, Any] = schema["paths"][endpoint.url_path][endpoint.verb.lower()]
        return found

    for source, feeds, targets in LINKS:
        links = operation(source)["responses"]["200"].setdefault("links", {})
        for target in targets.split():
            links[target] = _link(by_method[target], operation(target)["operationId"], feeds)


def _link(target: Endpoint, operation_id: str, feeds: dict[str, str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for argument, pointer in feeds.items():
        expression: Any = "$response.body" + (f"#{pointer}" if pointer else "")
        name, _, inner = argument.partition(".")
        if name.endswith("[]"):  # a query argument repeats; a body one is a list
            name = name[:-2]
            expression = expression if target.in_query else [expression]
        assert name in target.signature.parameters, f"{target.method} has no {name}"
        if name in target.path_args:
            parameters[f"path.{name}"] = expression
        elif target.in_query:
            parameters[f"query.{name}"] = expression
        else:
            body[name] = body.get(name, {}) | {inner: expression} if inner else expression
    found: dict[str, Any] = {"operationId": operation_id}
    if parameters:
        found["parameters"] = parameters
    if body:
        found["requestBody"] = body
    return found


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
        found = _rule(endpoint, p.name, of(hint))
        needed = p.default is inspect.Parameter.empty
        if p.name in endpoint.path_args:
            parameters.append({"name": p.name, "in": "path", "required": True, "schema": found})
        elif endpoint.in_query:
            parameters.append(
                {
                    "name": p.name,
                    "in": "query",
                    "required": needed and not is_sequence(hint),
                    "schema": found,
                    **({"explode": True} if is_sequence(hint) else {}),
                }
            )
        else:
            properties[p.name] = found
            if needed:
                required.append(p.name)
    if endpoint.in_query:
        return parameters, None
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    return parameters, body


_JSON_BLOB = {
    "type": "object",
    "properties": {"digest": {"type": "string"}, "size": {"type": "integer"}},
    "required": ["digest", "size"],
}
_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_NULL = {"application/json": {"schema": {"type": "null"}}}
_UPLOAD_HEADERS = [
    {"name": h, "in": "header", "required": True, "schema": {"type": "integer", "minimum": 0}}
    for h in ("Upload-Offset", "Upload-Length")
]
_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/blobs/{digest}", "head"): {
        "200": {"description": "the blob is stored"},
        "404": {"description": "the blob is not stored (no body)"},
    },
    ("/api/v1/blobs/{digest}", "get"): {
        "200": {"description": "the blob's bytes", "content": _BYTES},
        "206": {"description": "the bytes from the offset of `Range: bytes=N-`", "content": _BYTES},
    },
    ("/api/v1/blobs/{digest}", "put"): {
        "200": {
            "description": "stored",
            "content": {"application/json": {"schema": _JSON_BLOB}},
        },
    },
    ("/api/v1/blobs/{digest}", "delete"): {"200": {"description": "removed", "content": _NULL}},
    ("/api/v1/uploads/{digest}", "head"): {
        "200": {"description": "`Upload-Offset`: the bytes held; `Upload-Complete: ?1` if stored"}
    },
    ("/api/v1/uploads/{digest}", "patch"): {
        "201": {
            "description": "the last chunk: the blob is stored",
            "content": {"application/json": {"schema": _JSON_BLOB}},
        },
        "204": {"description": "the chunk is held; `Upload-Offset` says how much"},
    },
    ("/api/v1/uploads/{digest}", "delete"): {
        "200": {"description": "the partial upload is dropped", "content": _NULL}
    },
}
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/blobs/{digest}", "put"): _BYTES,
    ("/api/v1/uploads/{digest}", "patch"): _BYTES,
}


def _admin(of: Any) -> None:
    """The admin routes' bodies and answers (they read their JSON themselves)."""
    from triptych.store.auth import ALL_PROJECTS, ROLES, ApiToken, User

    role = {"type": "string", "enum": list(ROLES)}
    label = {"type": ["string", "null"], "maxLength": 250}

    def body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": False,
                    }
                }
            },
        }

    def answer(found: dict[str, Any]) -> dict[str, Any]:
        return {"200": {"description": "done", "content": {"application/json": {"schema": found}}}}

    user, token = of(User), of(ApiToken)
    issued = {"allOf": [token, {"properties": {"secret": {"type": "string"}}}]}
    _BODIES["/api/v1/admin/users", "post"] = body(
        {"name": {"type": "string"}, "grants": {"type": "object", "additionalProperties": role}},
        ["name"],
    )
    _BODIES["/api/v1/admin/users/{name}/roles", "put"] = body(
        {"role": role, "project": {"type": "string", "default": ALL_PROJECTS}}, ["role"]
    )
    _BODIES["/api/v1/admin/tokens", "post"] = body(
        {
            "user": {"type": "string"},
            "label": label,
            "expires_days": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 3650},
        },
        ["user"],
    )
    _ANSWERS["/api/v1/admin/users", "get"] = answer({"type": "array", "items": user})
    _ANSWERS["/api/v1/admin/users", "post"] = answer(user)
    _ANSWERS["/api/v1/admin/users/{name}/roles", "put"] = answer(user)
    _ANSWERS["/api/v1/admin/tokens", "get"] = answer({"type": "array", "items": token})
    _ANSWERS["/api/v1/admin/tokens", "post"] = answer(issued)
    _ANSWERS["/api/v1/admin/tokens/{token_id}/revoke", "post"] = answer(token)


def describe_raw(schema: dict[str, Any]) -> None:
    """Describe the answers of the routes that read their own requests (blobs, uploads,
    admin): errors are 4XX with the error body (FastAPI's 422 is never sent: a request that
    fails validation is a 400 InvalidInput), and the blob routes' real answers."""
    from pydantic import TypeAdapter

    defs: dict[str, Any] = {}

    def of(hint: Any) -> dict[str, Any]:
        found = TypeAdapter(hint).json_schema(ref_template=REF)
        defs.update(found.pop("$defs", {}))
        return found

    _admin(of)
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
    store_routes = {(e.url_path, e.verb.lower()) for e in ENDPOINTS}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for verb, operation in operations.items():
            if (path, verb) in store_routes:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if (path, verb) in _ANSWERS:
                responses.pop("200", None)
                responses.update(_ANSWERS[path, verb])
            if (path, verb) in _BODIES:
                found = _BODIES[path, verb]
                if "content" not in found:  # raw bytes
                    found = {"required": False, "content": found}
                operation["requestBody"] = found
            if (path, verb) == ("/api/v1/uploads/{digest}", "patch"):
                operation.setdefault("parameters", []).extend(_UPLOAD_HEADERS)
            responses["4XX"] = {"description": "a triptych error", "content": _error_content()}
            responses["5XX"] = {
                "description": "no artifact store, the store is unavailable, or a bug",
                "content": _error_content(),
            }
