"""Every route of the team server makes an explicit permission decision (fail closed), and the
endpoint table serves the whole store contract."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from triptych.errors import InvalidInput, PermissionDenied
from triptych.server.app import create_app
from triptych.server.permissions import Permission, UndeclaredRoute, check_routes, permission_of
from triptych.server.settings import ServerSettings
from triptych.store.base import MetadataStore, validate_alias, validate_dataset_name, validate_name
from triptych.store.http.client import HttpStore
from triptych.store.http.routes import ENDPOINTS
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

PUBLIC = {"/health", "/docs", "/docs/assets/{name}", "/openapi.json"}


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


@pytest.fixture
def app(sql: SqlStore) -> FastAPI:
    return create_app(sql)


def test_every_route_declares_one_permission(app: FastAPI) -> None:
    undecided = [getattr(r, "path", r) for r in app.routes if permission_of(r) is None]
    assert undecided == []
    public = {getattr(r, "path", "") for r in app.routes if permission_of(r) is Permission.PUBLIC}
    assert public == PUBLIC  # nothing else is reachable without a token once auth exists


# Reads sent as POST because they carry a JSON body (triptych's search, and MLflow's client).
READS_WITH_A_BODY = {
    "search_runs",
    "mlflow POST /experiments/search",
    "mlflow POST /runs/search",
    "mlflow POST /logged-models/search",
    "mlflow POST /registered-models/get-latest-versions",
}


def test_every_api_route_needs_read_or_write(app: FastAPI) -> None:
    api = [r for r in app.routes if getattr(r, "path", "").startswith("/api/")]
    assert {r.name for r in api} >= {e.method for e in ENDPOINTS}
    for route in api:
        methods = getattr(route, "methods", set())
        expected = Permission.READ if methods <= {"GET", "HEAD"} else Permission.WRITE
        if route.name in READS_WITH_A_BODY:
            expected = Permission.READ
        assert permission_of(route) is expected, route.name


def test_a_route_without_a_decision_is_refused(app: FastAPI) -> None:
    app.add_api_route("/api/v1/forgotten", lambda: {"ok": True}, methods=["GET"])
    with pytest.raises(UndeclaredRoute, match="/api/v1/forgotten"):
        check_routes(app)


def test_the_table_covers_the_contract_once() -> None:
    methods = [e.method for e in ENDPOINTS]
    assert len(methods) == len(set(methods))
    assert set(MetadataStore.__abstractmethods__) <= set(methods)
    routes = [(e.verb, e.path) for e in ENDPOINTS]
    assert len(routes) == len(set(routes))


def test_the_client_has_the_contract_signatures() -> None:
    assert not HttpStore.__abstractmethods__
    for endpoint in ENDPOINTS:
        assert inspect.signature(getattr(HttpStore, endpoint.method)) == endpoint.signature


class DenyWrites:
    """A policy that lets viewers in: what a role check will look like."""

    def authorize(self, request: object, permission: Permission) -> None:
        if permission is not Permission.READ:
            raise PermissionDenied(f"{permission.value} access is needed", hint="ask an admin")


def test_the_policy_decides_every_non_public_route(sql: SqlStore) -> None:
    server = LiveServer(sql)
    server.app.state.policy = DenyWrites()
    with server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        remote = HttpStore(server.url)
        try:
            assert remote.list_experiments() == []
            with pytest.raises(PermissionDenied, match="write access"):
                remote.create_experiment("nope")
        finally:
            remote.close()
        assert sql.list_experiments() == []


def test_openapi_describes_every_store_endpoint(app: FastAPI) -> None:
    schema = app.openapi()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(schema)
    for endpoint in ENDPOINTS:
        operation = schema["paths"][endpoint.url_path][endpoint.verb.lower()]
        assert operation["description"], endpoint.method  # the contract's docstring
        named = {p["name"] for p in operation.get("parameters", [])}
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        named |= set(body.get("schema", {}).get("properties", {}))
        arguments = set(endpoint.signature.parameters) - {"self"}
        assert named == arguments, endpoint.method


def test_openapi_describes_the_raw_routes_answers(sql: SqlStore) -> None:
    """Found by the API gauntlet: blobs, uploads and admin documented only FastAPI's 200 and
    422, but a bad digest is a 400 and a missing blob a 404 (and 422 is never sent)."""
    schema = create_app(sql, settings=ServerSettings(store=sql.url, auth=True)).openapi()
    raw = [p for p in schema["paths"] if p.startswith(("/api/v1/blobs", "/api/v1/uploads"))]
    raw += [p for p in schema["paths"] if p.startswith("/api/v1/admin")]
    assert len(raw) == 6
    for path in raw:
        for operation in schema["paths"][path].values():
            assert "422" not in operation["responses"], path
            assert "4XX" in operation["responses"], path
    blob = schema["paths"]["/api/v1/blobs/{digest}"]
    assert "application/octet-stream" in blob["get"]["responses"]["206"]["content"]
    assert "application/octet-stream" in blob["put"]["requestBody"]["content"]
    upload = schema["paths"]["/api/v1/uploads/{digest}"]["patch"]
    assert {"201", "204"} <= set(upload["responses"])
    assert {p["name"] for p in upload["parameters"]} >= {"Upload-Offset", "Upload-Length"}
    users = schema["paths"]["/api/v1/admin/users"]  # admin routes read their own JSON
    body = users["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name"] and body["additionalProperties"] is False
    assert users["get"]["responses"]["200"]["content"]["application/json"]["schema"]["items"]


def test_openapi_bodies_and_records_are_closed(sql: SqlStore) -> None:
    """Found by the API gauntlet's stateful pass: bodies and records allowed any extra
    property, so requests valid by the document were refused ("unknown argument(s)")."""
    with LiveServer(sql) as server:
        schema = httpx.get(f"{server.url}/openapi.json").json()
        answer = httpx.post(f"{server.url}/api/v1/experiments", json={"name": "x", "colour": 1})
    create = schema["paths"]["/api/v1/experiments"]["post"]["requestBody"]
    assert create["content"]["application/json"]["schema"]["additionalProperties"] is False
    run = schema["paths"]["/api/v1/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert run["schema"]["properties"]["spec"]["additionalProperties"] is False  # RunSpec
    assert schema["components"]["schemas"]["Metric"]["additionalProperties"] is False
    tags = create["content"]["application/json"]["schema"]["properties"]["tags"]["anyOf"][0]
    assert tags["additionalProperties"] == {"type": "string"}  # a mapping stays a mapping
    assert answer.status_code == 400 and "unknown argument(s): colour" in answer.json()["message"]


def test_openapi_links_feed_the_created_ids_on(app: FastAPI) -> None:
    schema = app.openapi()
    operations = {
        op["operationId"]: op for path in schema["paths"].values() for op in path.values()
    }
    links = {
        (source["operationId"].split("_api_")[0], name): link
        for source in operations.values()
        for name, link in source["responses"].get("200", {}).get("links", {}).items()
    }
    assert len(links) > 30
    for link in links.values():  # each names a real operation and its real parameters
        target = operations[link["operationId"]]
        named = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
        assert set(link.get("parameters", {})) <= named, link
        body = target.get("requestBody", {}).get("content", {}).get("application/json", {})
        assert set(link.get("requestBody", {})) <= set(body.get("schema", {}).get("properties", {}))
    get_run = links["create_run", "get_run"]
    assert get_run["parameters"] == {"path.run_id": "$response.body#/run_id"}
    assert links["create_experiment", "create_run"]["requestBody"] == {
        "spec": {"experiment_id": "$response.body"}  # create_experiment answers the bare id
    }
    assert links["create_run", "heartbeat"]["requestBody"] == {
        "run_ids": ["$response.body#/run_id"]
    }
    alias = links["create_model_version", "set_model_alias"]
    assert alias["parameters"] == {"path.name": "$response.body#/name"}
    assert alias["requestBody"] == {"version": "$response.body#/version"}


NAME_RULES = [  # (path, verb, argument, the store's check, a name it takes, one it refuses)
    ("/api/v1/experiments", "post", "name", partial(validate_name, "experiment"), "exp 1", " "),
    (
        "/api/v1/models",
        "post",
        "name",
        partial(validate_dataset_name, kind="model"),
        "m-2.1",
        "m 2",
    ),
    ("/api/v1/models/{name}/aliases/{alias}", "put", "alias", validate_alias, "champion", "1st"),
]


@pytest.mark.parametrize(("path", "verb", "argument", "check", "good", "bad"), NAME_RULES)
def test_openapi_states_the_stores_name_rules(
    app: FastAPI, path: str, verb: str, argument: str, check: Any, good: str, bad: str
) -> None:
    """Found by the API gauntlet's stateful pass: names were plain strings in the document,
    so most experiments and models created by requests valid by it were refused."""
    operation = app.openapi()["paths"][path][verb]
    found = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    found |= body.get("schema", {}).get("properties", {})
    pattern = found[argument]["pattern"]
    assert re.search(pattern, good) and check(good) == good
    assert not re.search(pattern, bad)
    with pytest.raises(InvalidInput):
        check(bad)
