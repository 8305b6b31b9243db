"""Errors over HTTP: the status from the one table, a JSON body with message and hint, and the
client raising the very class the server's store raised."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triptych.errors import AlreadyExists, InvalidInput, NotFound, StoreUnavailable
from triptych.store.http.client import HttpStore
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    with LiveServer(store) as live:
        yield live
    store.close()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1") as client:
        yield client


def _error(response: httpx.Response, status: int, error: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error and body["message"]
    return body  # type: ignore[no-any-return]


def test_missing_run_is_404_with_the_fix(api: httpx.Client) -> None:
    body = _error(api.get("/runs/" + "0" * 32), 404, "NotFound")
    assert "not found" in body["message"] and body["hint"]


def test_bad_filter_is_400(api: httpx.Client) -> None:
    eid = api.post("/experiments", json={"name": "e"}).json()
    body = _error(
        api.post("/runs/search", json={"experiment_ids": [eid], "filter_string": "metrics.m <"}),
        400,
        "InvalidInput",
    )
    assert "metrics.m" in body["message"]


def test_duplicate_name_is_409(api: httpx.Client) -> None:
    assert api.post("/experiments", json={"name": "dup"}).status_code == 200
    body = _error(api.post("/experiments", json={"name": "dup"}), 409, "AlreadyExists")
    assert "dup" in body["message"]


def test_changed_param_is_409_conflict(api: httpx.Client) -> None:
    eid = api.post("/experiments", json={"name": "e"}).json()
    run = api.post("/runs", json={"spec": {"experiment_id": eid, "params": {"a": "1"}}}).json()
    changed = api.post(f"/runs/{run['run_id']}/batch", json={"params": {"a": "2"}})
    _error(changed, 409, "Conflict")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"name": "x", "colour": "red"}', "colour"),
        (b"{}", "missing argument 'name'"),
    ],
)
def test_malformed_requests_are_400(api: httpx.Client, body: bytes, message: str) -> None:
    response = api.post("/experiments", content=body, headers={"content-type": "application/json"})
    assert message in _error(response, 400, "InvalidInput")["message"]


# Found by the API gauntlet (tests/test_gauntlet_api.py): each reached the store and was a 500.
@pytest.mark.parametrize(
    ("verb", "path", "body"),
    [
        ("POST", "/runs/heartbeat", {"run_ids": [None], "at": [{"x": 1}]}),
        ("POST", "/runs/fail-stale", {"at": {"x": {}}}),
        ("POST", "/runs/r1/finish", {"status": "FINISHED", "end_time": "soon"}),
        ("PATCH", "/models/m/versions/1", {"tags": 1.5e16}),
        (
            "POST",
            "/alias-requests/8337624610132285423500656640/decision",
            {"approve": True, "user": None},
        ),
        ("GET", "/alerts/174780481609998796823382196224", None),
        ("GET", "/alerts?limit=", None),
        ("GET", "/deployments/d/events?limit=true", None),
        ("GET", "/trigger-events?kind=cron&name=n&since=true", None),
    ],
)
def test_an_argument_of_the_wrong_type_is_a_400_naming_it(
    api: httpx.Client, verb: str, path: str, body: object
) -> None:
    error = _error(api.request(verb, path, json=body), 400, "InvalidInput")
    assert "argument '" in error["message"] and set(error) == {"error", "message", "hint"}


def test_param_and_tag_values_may_be_numbers(api: httpx.Client) -> None:
    eid = api.post("/experiments", json={"name": "e"}).json()
    run = api.post("/runs", json={"spec": {"experiment_id": eid, "params": {"a": 0.5}}})
    assert run.status_code == 200, run.text  # stored as text, as the store does locally
    assert run.json()["params"] == {"a": "0.5"}


def test_unknown_endpoint_and_method(api: httpx.Client) -> None:
    assert "/docs" in _error(api.get("/nothing-here"), 404, "NotFound")["hint"]
    wrong = api.delete("/experiments")
    assert "not allowed" in _error(wrong, 405, "InvalidInput")["message"]
    assert wrong.headers["allow"]  # a method the path takes


def test_unexpected_failure_is_500_without_a_traceback(server: LiveServer) -> None:
    class Broken(SqlStore):
        def list_datasets(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("secret internals")

    broken = Broken(server.app.state.store.url)
    server.use(broken)
    try:
        response = httpx.get(f"{server.url}/api/v1/datasets")
        body = _error(response, 500, "TriptychError")
        assert "secret" not in response.text and "RuntimeError" in body["message"]
    finally:
        broken.close()


def test_the_client_raises_the_server_side_class(server: LiveServer) -> None:
    remote = HttpStore(server.url)
    try:
        remote.create_experiment("x")
        with pytest.raises(AlreadyExists, match="'x'") as caught:
            remote.create_experiment("x")
        assert caught.value.hint == remote_hint(server, "x")
        with pytest.raises(NotFound):
            remote.get_experiment("12345")
        with pytest.raises(InvalidInput, match="not JSON"):
            remote.add_trigger_event("alert", "x", {"when": object()})
    finally:
        remote.close()


def remote_hint(server: LiveServer, name: str) -> str | None:
    """The hint the server's own store gives, for comparison."""
    try:
        server.app.state.store.create_experiment(name)
    except AlreadyExists as e:
        return e.hint
    raise AssertionError("expected AlreadyExists")


def test_no_server_is_store_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    remote = HttpStore(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach") as caught:
            remote.list_experiments()
        assert "triptych server" in (caught.value.hint or "")
    finally:
        remote.close()


def test_a_forked_child_opens_its_own_connections(server: LiveServer) -> None:
    remote = HttpStore(server.url)
    try:
        remote.create_experiment("parent")
        with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads running
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: the parent's kept-alive socket must not be reused
            code = 0
            try:
                remote.create_experiment("child")
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sorted(e.name for e in remote.list_experiments()) == ["child", "parent"]
    finally:
        remote.close()


def test_an_oversized_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from triptych.server.settings import ServerSettings

    store = SqlStore(f"sqlite:///{tmp_path / 'limited.db'}")
    server = LiveServer(store)
    server.app.state.settings = ServerSettings(store=store.url, max_body=1000)
    with server, httpx.Client(base_url=f"{server.url}/api/v1") as api:
        big = {"name": "x" * 5000}
        message = _error(api.post("/experiments", json=big), 400, "InvalidInput")["message"]
        assert "over 1,000 bytes" in message

        def chunks() -> Iterator[bytes]:  # no content-length: counted while streaming
            yield b'{"name": "'
            yield b"y" * 5000
            yield b'"}'

        streamed = api.post("/experiments", content=chunks())
        assert "over 1,000 bytes" in _error(streamed, 400, "InvalidInput")["message"]
        assert api.post("/experiments", json={"name": "small"}).status_code == 200
    store.close()


# Found by the API gauntlet over PostgreSQL: values SQLite takes and PostgreSQL's columns cannot.
@pytest.mark.parametrize(
    ("verb", "path", "body"),
    [
        ("POST", "/experiments", {"name": "m4\u0000x"}),  # NUL in text
        ("POST", "/alias-requests/3265763369657798/decision", {"approve": False, "user": None}),
    ],
)
def test_a_value_postgresql_cannot_store_is_a_400(
    postgres_url: str, verb: str, path: str, body: object
) -> None:
    store = SqlStore(postgres_url)
    try:
        with LiveServer(store) as live, httpx.Client(base_url=f"{live.url}/api/v1") as api:
            error = _error(api.request(verb, path, json=body), 400, "InvalidInput")
            assert "cannot store" in error["message"]
    finally:
        store.close()
