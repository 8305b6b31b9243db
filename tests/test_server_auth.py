"""``triptych server --auth`` against a real uvicorn on loopback: 401 without a token on every
non-public route, the role matrix, project grants, revocation and expiry on the very next
request, the client's errors, secrets kept out of logs, the Host allowlist."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import create_engine, text

from triptych.errors import PermissionDenied, Unauthenticated
from triptych.server import accounts
from triptych.server.permissions import Permission, permission_of
from triptych.server.settings import ServerSettings
from triptych.store.base import now_ms
from triptych.store.entities import RunSpec
from triptych.store.http.client import HttpStore
from triptych.store.sql.engine import normalise_url
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

PUBLIC = {"/health", "/docs", "/docs/assets/{name}", "/openapi.json", "/ui/login", "/ui/logout"}
ROLES = ("viewer", "editor", "admin")


@dataclass
class Team:
    server: LiveServer
    store: SqlStore
    url: str
    tokens: dict[str, str]  # who → token

    def get(self, path: str, who: str | None = None, **kw: object) -> httpx.Response:
        return self.request("GET", path, who, **kw)

    def request(self, verb: str, path: str, who: str | None = None, **kw: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
        headers.update(kw.pop("headers", {}))  # type: ignore[arg-type]
        return httpx.request(verb, self.server.url + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def _team(tmp_path: Path, **settings: object) -> tuple[SqlStore, dict[str, str], str]:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    store = SqlStore(url)
    tokens = {"admin": accounts.create_admin(store, "root").secret}
    for role in ("viewer", "editor"):
        store.create_user(role, {"*": role})
        tokens[role] = accounts.issue_token(store, role).secret
    store.create_user("nobody")  # a user without any role
    tokens["nobody"] = accounts.issue_token(store, "nobody").secret
    store.create_user("owner", {"*": "viewer"})
    tokens["owner"] = accounts.issue_token(store, "owner").secret
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:  # a role this triptych does not know (a newer one's, a typo)
        conn.execute(text("UPDATE role_grants SET role = 'owner' WHERE role = 'viewer' AND "
                          "user_id = (SELECT id FROM users WHERE name = 'owner')"))  # fmt: skip
    engine.dispose()
    store.create_user("scoped", {"diabetes": "editor"})
    tokens["scoped"] = accounts.issue_token(store, "scoped").secret
    return store, tokens, url


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    store, tokens, url = _team(tmp_path)
    with LiveServer(store, settings=ServerSettings(store=url, auth=True)) as server:
        yield Team(server, store, url, tokens)
    store.close()


def _concrete(path: str) -> str:
    """A request path for a route pattern: every parameter filled in."""
    return re.sub(r"{[^}]+}", "x", path)


def test_every_non_public_route_refuses_a_request_without_token(team: Team) -> None:
    routes = [r for r in team.server.app.routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes if permission_of(r) is Permission.PUBLIC} == PUBLIC
    checked = 0
    for route in routes:
        for verb in sorted(route.methods):
            answer = team.request(verb, _concrete(route.path))
            if permission_of(route) is Permission.PUBLIC:
                assert answer.status_code != 401, (verb, route.path)  # (CSRF may refuse: 403)
                continue
            assert answer.status_code == 401, (verb, route.path, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            if verb != "HEAD":
                assert answer.json()["error"] == "Unauthenticated"
            wrong = team.request(
                verb, _concrete(route.path), headers={"authorization": "Bearer tpt_nope"}
            )
            assert wrong.status_code == 401, (verb, route.path)
            checked += 1
    assert checked > 80  # the whole store contract, blobs, UI pages, admin routes


# expected status per (who, route class); 403 = known but not allowed, fail closed
MATRIX = {
    None: {"public": 200, "read": 401, "write": 401, "admin": 401, "ui": 401},
    "nobody": {"public": 200, "read": 403, "write": 403, "admin": 403, "ui": 403},
    "owner": {"public": 200, "read": 403, "write": 403, "admin": 403, "ui": 403},
    "viewer": {"public": 200, "read": 200, "write": 403, "admin": 403, "ui": 200},
    "editor": {"public": 200, "read": 200, "write": 200, "admin": 403, "ui": 200},
    "admin": {"public": 200, "read": 200, "write": 200, "admin": 200, "ui": 200},
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_the_role_matrix(team: Team, who: str | None) -> None:
    got = {
        "public": team.get("/health", who).status_code,
        "read": team.get("/api/v1/experiments", who).status_code,
        "write": team.request(
            "POST", "/api/v1/experiments", who, json={"name": f"by-{who}"}
        ).status_code,
        "admin": team.get("/api/v1/admin/users", who).status_code,
        "ui": team.get("/ui/experiments", who).status_code,
    }
    assert got == MATRIX[who]
    made = {e.name for e in team.store.list_experiments()}
    assert (f"by-{who}" in made) is (MATRIX[who]["write"] == 200)


def test_a_denial_names_the_missing_role(team: Team) -> None:
    viewer = HttpStore(team.server.url, token=team.tokens["viewer"])
    try:
        with pytest.raises(PermissionDenied, match="'viewer' needs write access") as caught:
            viewer.create_experiment("nope")
        assert "user grant viewer editor" in str(caught.value.hint)
    finally:
        viewer.close()


def test_project_grants_apply_where_the_route_names_the_experiment(team: Team) -> None:
    mine = team.store.create_experiment("diabetes")
    other = team.store.create_experiment("other")
    run_mine = team.store.create_run(RunSpec(experiment_id=mine, name="a")).run_id
    run_other = team.store.create_run(RunSpec(experiment_id=other, name="b")).run_id
    batch = {"metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]}
    assert team.get(f"/api/v1/experiments/{mine}", "scoped").status_code == 200
    assert team.get(f"/api/v1/runs/{run_mine}", "scoped").status_code == 200
    logged = team.request("POST", f"/api/v1/runs/{run_mine}/batch", "scoped", json=batch)
    assert logged.status_code == 200, logged.text
    assert team.get(f"/api/v1/experiments/{other}", "scoped").status_code == 403
    assert team.get(f"/api/v1/runs/{run_other}", "scoped").status_code == 403
    refused = team.request("POST", f"/api/v1/runs/{run_other}/batch", "scoped", json=batch)
    assert refused.status_code == 403
    assert "on project 'other'" in refused.json()["message"]
    assert team.get("/api/v1/runs/0000", "scoped").status_code == 403  # learns nothing
    # routes without an experiment need the role on *; lists show the user's projects only
    assert [e["name"] for e in team.get("/api/v1/experiments", "scoped").json()] == ["diabetes"]
    assert team.get("/api/v1/datasets", "scoped").status_code == 403
    assert team.get("/api/v1/admin/users", "scoped").status_code == 403
    assert [m.key for m in team.store.get_metric_history(run_mine, "loss")] == ["loss"]
    assert team.store.get_metric_history(run_other, "loss") == []


def test_project_grants_apply_where_the_arguments_name_the_experiment(team: Team) -> None:
    mine = team.store.create_experiment("diabetes")
    other = team.store.create_experiment("other")
    scoped = HttpStore(team.server.url, token=team.tokens["scoped"])
    try:
        run = scoped.create_run(RunSpec(experiment_id=mine, name="mine"))
        assert team.store.get_run(run.run_id).experiment_id == mine
        with pytest.raises(PermissionDenied, match="on project 'other'") as caught:
            scoped.create_run(RunSpec(experiment_id=other, name="theirs"))
        assert "--project other" in str(caught.value.hint)
        assert [r.run_id for r in scoped.search_runs([mine]).items] == [run.run_id]
        with pytest.raises(PermissionDenied):
            scoped.search_runs([mine, other])
        with pytest.raises(PermissionDenied):
            scoped.search_runs([])
        with pytest.raises(PermissionDenied):
            scoped.search_runs(["999"])  # a missing experiment is refused like a foreign one
        scoped.heartbeat([run.run_id])
        with pytest.raises(PermissionDenied, match="on project 'elsewhere'"):
            scoped.create_experiment("elsewhere")
        found = scoped.get_experiment_by_name("diabetes")
        assert found is not None and found.experiment_id == mine
        with pytest.raises(PermissionDenied, match="on project 'other'"):
            scoped.get_experiment_by_name("other")
        assert [e.name for e in scoped.list_experiments()] == ["diabetes"]  # its projects only
    finally:
        scoped.close()
    assert [r.name for r in team.store.search_runs([other]).items] == []
    assert {e.name for e in team.store.list_experiments()} == {"diabetes", "other"}


def test_deferred_decisions_are_only_for_store_routes(team: Team) -> None:
    from triptych.server.auth import BODY_SUBJECTS
    from triptych.server.permissions import requires
    from triptych.store.http.routes import BY_METHOD

    for method in BODY_SUBJECTS:  # each is decided by the store routes' check_call
        assert method in BY_METHOD and BY_METHOD[method].path_args == (), method
    team.server.app.add_api_route(  # another route that happens to share a store method's name
        "/api/v1/elsewhere",
        lambda: {"reached": True},
        methods=["POST"],
        name="create_run",
        dependencies=[requires(Permission.WRITE)],
    )
    assert team.request("POST", "/api/v1/elsewhere", "scoped").status_code == 403
    assert team.request("POST", "/api/v1/elsewhere", "editor").status_code == 200


def test_revocation_applies_to_the_very_next_request(team: Team) -> None:
    client = HttpStore(team.server.url, token=team.tokens["editor"])
    try:
        client.create_experiment("before")  # the connection is kept alive across the revoke
        token_id = team.tokens["editor"][4:16]
        team.store.revoke_token(token_id)
        with pytest.raises(Unauthenticated, match="not valid") as caught:
            client.create_experiment("after")
        assert "TRIPTYCH_TRACKING_TOKEN was refused" in str(caught.value.hint)
    finally:
        client.close()
    assert [e.name for e in team.store.list_experiments()] == ["before"]


def test_an_admin_revokes_remotely(team: Team) -> None:
    viewer_id = team.tokens["viewer"][4:16]
    assert team.get("/api/v1/experiments", "viewer").status_code == 200
    listed = team.get("/api/v1/admin/tokens", "admin", params={"user": "viewer"}).json()
    assert [t["id"] for t in listed] == [viewer_id]
    assert not any("digest" in t or "secret" in t for t in listed)
    done = team.request("POST", f"/api/v1/admin/tokens/{viewer_id}/revoke", "admin")
    assert done.status_code == 200 and done.json()["revoked_at"]
    assert team.get("/api/v1/experiments", "viewer").status_code == 401
    assert (
        team.request("POST", "/api/v1/admin/tokens/ffffffffffff/revoke", "admin").status_code == 404
    )


def test_expired_tokens_are_refused(team: Team) -> None:
    secret = "tpt_0000000000aa_" + "e" * 43
    team.store.add_token(
        "editor", "0000000000aa", accounts.digest_of(secret), expires_at=now_ms() + 400
    )
    headers = {"authorization": f"Bearer {secret}"}
    assert team.get("/api/v1/experiments", headers=headers).status_code == 200
    time.sleep(0.5)
    assert team.get("/api/v1/experiments", headers=headers).status_code == 401


def test_the_client_reads_its_token_from_the_environment(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIPTYCH_TRACKING_TOKEN", raising=False)
    anonymous = HttpStore(team.server.url)
    try:
        with pytest.raises(Unauthenticated) as caught:
            anonymous.list_experiments()
        assert "set TRIPTYCH_TRACKING_TOKEN" in str(caught.value.hint)
    finally:
        anonymous.close()
    monkeypatch.setenv("TRIPTYCH_TRACKING_TOKEN", team.tokens["viewer"])
    viewer = HttpStore(team.server.url)
    try:
        assert viewer.list_experiments() == []
        assert team.tokens["viewer"] not in repr(viewer)
    finally:
        viewer.close()


def test_bad_credentials_are_401_not_500(team: Team) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer " + "x" * 5000, "tpt_abc"):
        answer = team.get("/api/v1/experiments", headers={"authorization": header})
        assert answer.status_code == 401, header


def test_secrets_never_reach_the_logs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    store, tokens, url = _team(tmp_path)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    settings = ServerSettings(store=url, auth=True, access_log=True)
    keep = Keep(level=logging.DEBUG)
    with LiveServer(store, settings=settings) as server:
        names = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "triptych", "httpx")
        for name in names:
            logging.getLogger(name).addHandler(keep)
        try:
            secret = tokens["editor"]
            remote = HttpStore(server.url, token=secret)
            remote.create_experiment("logged")
            store.revoke_token(secret[4:16])
            with pytest.raises(Unauthenticated) as caught:
                remote.list_experiments()
            remote.close()
            login = httpx.get(f"{server.url}/ui/login")
            httpx.post(
                f"{server.url}/ui/login",
                data={"token": tokens["viewer"], "csrf_token": login.cookies["triptych_csrf"]},
                cookies=login.cookies,
            )
            httpx.get(f"{server.url}/api/v1/experiments?token={tokens['admin']}")  # misuse
        finally:
            for name in names:
                logging.getLogger(name).removeHandler(keep)
    store.close()
    out, err = capfd.readouterr()
    written = "\n".join([out, err, *records])
    assert "/api/v1/experiments" in written  # the access log was on
    for who in ("editor", "viewer"):
        assert tokens[who] not in written
        assert tokens[who][17:] not in written
    assert tokens["editor"] not in str(caught.value) and tokens["editor"] not in repr(caught.value)


def test_the_host_header_is_checked(tmp_path: Path) -> None:
    store, _, url = _team(tmp_path)
    settings = ServerSettings(store=url, auth=True, allowed_hosts=("ml.example.com",))
    try:
        with LiveServer(store) as local:  # default: the bind address and localhost
            assert httpx.get(f"{local.url}/health").status_code == 200
            evil = httpx.get(f"{local.url}/health", headers={"host": "evil.example"})
            assert evil.status_code == 400  # DNS rebinding cannot reach a loopback server
            port = local.port
            assert httpx.get(
                f"{local.url}/health", headers={"host": f"localhost:{port}"}
            ).is_success
        with LiveServer(store, settings=settings) as named:
            ok = httpx.get(f"{named.url}/health", headers={"host": "ml.example.com"})
            assert ok.status_code == 200
            assert httpx.get(f"{named.url}/health").status_code == 400
    finally:
        store.close()


def test_auth_needs_a_store_that_keeps_users() -> None:
    from triptych.errors import InvalidInput
    from triptych.server.app import _policy

    class NoUsers:
        url = "x"

    with pytest.raises(InvalidInput, match="keeps no users"):
        _policy(ServerSettings(store="sqlite://", auth=True), NoUsers())  # type: ignore[arg-type]


def test_artifact_bytes_need_a_token_too(tmp_path: Path) -> None:
    from triptych.artifacts.fs import FsspecArtifactStore
    from triptych.artifacts.http import HttpArtifactStore

    store, tokens, url = _team(tmp_path)
    local = FsspecArtifactStore(str(tmp_path / "artifacts"))
    settings = ServerSettings(store=url, auth=True)
    try:
        with LiveServer(store, local, settings=settings) as server:
            editor = HttpArtifactStore(server.url, token=tokens["editor"])
            viewer = HttpArtifactStore(server.url, token=tokens["viewer"])
            anonymous = HttpArtifactStore(server.url, token="")
            try:
                blob = editor.put_bytes(b"weights")
                assert viewer.get_bytes(blob.digest) == b"weights"
                with pytest.raises(PermissionDenied, match="write access"):
                    viewer.put_bytes(b"other weights")
                with pytest.raises(Unauthenticated):
                    anonymous.get_bytes(blob.digest)
            finally:
                for client in (editor, viewer, anonymous):
                    client.close()
    finally:
        store.close()


def test_the_token_setting_is_a_secret(tmp_path: Path) -> None:
    from triptych import config
    from triptych.errors import ConfigError

    secret = "tpt_0123456789ab_" + "z" * 43
    settings = config.resolve(environ={"TRIPTYCH_TRACKING_TOKEN": secret}, cwd=tmp_path)
    assert settings.tracking_token == secret
    assert settings.sources["tracking_token"] == "env TRIPTYCH_TRACKING_TOKEN"
    assert settings.as_dict()["tracking_token"] == "***"
    assert secret not in repr(settings) and secret not in str(settings.as_dict())
    (tmp_path / "triptych.toml").write_text(f'tracking_token = "{secret}"\n')
    with pytest.raises(ConfigError, match="does not belong in") as caught:
        config.resolve(environ={}, cwd=tmp_path)
    assert secret not in str(caught.value)


def test_an_admin_manages_users_and_tokens_remotely(team: Team) -> None:
    made = team.request(
        "POST", "/api/v1/admin/users", "admin", json={"name": "bob", "grants": {"*": "viewer"}}
    )
    assert made.status_code == 200, made.text
    assert made.json()["created_by"] == "root"  # the admin who acted, from its token
    issued = team.request(
        "POST", "/api/v1/admin/tokens", "admin", json={"user": "bob", "expires_days": 1}
    )
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    secret = issued.json()["secret"]
    assert accounts.parse_token(secret) is not None and issued.json()["expires_at"]
    bob = {"authorization": f"Bearer {secret}"}
    assert team.get("/api/v1/experiments", headers=bob).status_code == 200
    assert (
        team.request("POST", "/api/v1/experiments", json={"name": "x"}, headers=bob).status_code
        == 403
    )
    raised = team.request("PUT", "/api/v1/admin/users/bob/roles", "admin", json={"role": "editor"})
    assert raised.json()["grants"] == [{"project": "*", "role": "editor"}]
    assert (
        team.request("POST", "/api/v1/experiments", json={"name": "x"}, headers=bob).status_code
        == 200
    )
    assert not any(secret in str(t) for t in team.get("/api/v1/admin/tokens", "admin").json())
    for path, body, status in (
        ("/api/v1/admin/users", {"name": "bob"}, 409),
        ("/api/v1/admin/users", {"name": "eve", "grants": {"*": "root"}}, 400),
        ("/api/v1/admin/users", {"name": "eve", "grants": ["viewer"]}, 400),
        ("/api/v1/admin/users", {"name": "eve", "role": "viewer"}, 400),
        ("/api/v1/admin/tokens", {"user": "nobody-here"}, 404),
        ("/api/v1/admin/tokens", {"user": "bob", "expires_days": "soon"}, 400),
        ("/api/v1/admin/tokens", {"user": "bob", "expires_days": 0}, 400),
    ):
        assert team.request("POST", path, "admin", json=body).status_code == status, body
        assert team.request("POST", path, "editor", json=body).status_code == 403, body
    assert (
        team.request(
            "PUT", "/api/v1/admin/users/zed/roles", "admin", json={"role": "viewer"}
        ).status_code
        == 404
    )


def test_the_api_description_declares_the_bearer_token(team: Team) -> None:
    schema = team.get("/openapi.json").json()  # public, also under --auth
    assert schema["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert schema["security"] == [{"token": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "401" in schema["paths"]["/api/v1/experiments"]["get"]["responses"]
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(schema)


def test_a_project_editor_tracks_a_run_end_to_end(team: Team, tmp_path: Path) -> None:
    """The fluent API as a project-scoped editor: environment, metrics, params, an artifact."""
    import os
    import subprocess
    import sys

    from triptych.artifacts.fs import FsspecArtifactStore

    mine = team.store.create_experiment("diabetes")
    team.server.app.state.artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.update(
        TRIPTYCH_TRACKING_URI=team.server.url,
        TRIPTYCH_ARTIFACT_URI=team.server.url,
        TRIPTYCH_TRACKING_TOKEN=team.tokens["scoped"],
    )
    (tmp_path / "notes.txt").write_text("scoped")
    code = (
        "import triptych\n"
        "with triptych.start_run('diabetes', name='scoped') as run:\n"
        "    triptych.log_param('alpha', 1)\n"
        "    triptych.log_metric('loss', 0.5)\n"
        "    triptych.log_artifact('notes.txt')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    [run] = team.store.search_runs([mine]).items
    assert run.params == {"alpha": "1"} and run.status.value == "FINISHED"
    assert [a.path for a in team.store.list_artifacts(run.run_id)] == ["notes.txt"]
    digest = team.store.get_artifact(run.run_id, "notes.txt").digest
    assert team.request("DELETE", f"/api/v1/blobs/{digest}", "scoped").status_code == 403


def test_who_acts_is_who_authenticated(team: Team) -> None:
    """An editor cannot write another name into a trail; an admin (a loop's or CI's account)
    may record the name it acts for."""
    from triptych.store.entities import MonitorSpec

    experiment = team.store.create_experiment("trail")
    editor = HttpStore(team.server.url, token=team.tokens["editor"])
    admin = HttpStore(team.server.url, token=team.tokens["admin"])
    try:
        run = editor.create_run(RunSpec(experiment_id=experiment, name="r", user="mallory"))
        assert team.store.get_run(run.run_id).user == "editor"
        monitor = editor.create_monitor("svc", MonitorSpec("datasets:/d@1"), actor="mallory")
        assert monitor.created_by == "editor"
        unnamed = editor.create_monitor("svc2", MonitorSpec("datasets:/d@1"))
        assert unnamed.created_by == "editor"
        looped = admin.create_run(RunSpec(experiment_id=experiment, name="l", user="loop"))
        assert team.store.get_run(looped.run_id).user == "loop"
    finally:
        editor.close()
        admin.close()


def test_an_echoed_token_is_redacted_in_errors(team: Team) -> None:
    secret = team.tokens["viewer"]
    answer = team.request("POST", "/api/v1/experiments", "editor", json={"name": "x", secret: 1})
    assert answer.status_code == 400
    assert secret not in answer.text and secret[17:] not in answer.text
    assert f"{secret[:16]}_…" in answer.json()["message"]
