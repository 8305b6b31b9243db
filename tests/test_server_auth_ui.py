"""Browser sessions and CSRF under ``--auth``: the login form, its cookie (UI pages only), the
CSRF check every state-changing UI route must declare; and the server's account commands."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from triptych.server import accounts
from triptych.server.csrf import check_ui_routes, csrf_protected
from triptych.server.permissions import Permission, UndeclaredRoute, requires
from triptych.server.settings import ServerSettings
from triptych.store.sql.store import SqlStore
from triptych.testing.process import free_port
from triptych.testing.server import LiveServer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    store = SqlStore(url)
    store.create_user("ana", {"*": "viewer"})
    token = accounts.issue_token(store, "ana").secret
    with LiveServer(store, settings=ServerSettings(store=url, auth=True)) as server:
        yield server, token
    store.close()


def test_login_sets_a_strict_httponly_cookie_for_ui_pages_only(
    served: tuple[LiveServer, str],
) -> None:
    server, token = served
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/ui/experiments").status_code == 401
        asked = browser.get("/ui/models", headers={"accept": "text/html"})
        assert asked.status_code == 401 and 'href="/ui/login?next=/ui/models"' in asked.text
        page = browser.get("/ui/login", params={"next": "/ui/models"})
        assert page.status_code == 200 and 'name="csrf_token"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        csrf = browser.cookies["triptych_csrf"]
        assert f'value="{csrf}"' in page.text
        done = browser.post(
            "/ui/login", data={"token": token, "csrf_token": csrf, "next": "/ui/models"}
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/models"
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("triptych_session=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
            assert attribute.lower() in cookie.lower(), cookie
        assert browser.get("/ui/experiments").status_code == 200
        assert browser.get("/").status_code in (200, 307)
        assert browser.get("/api/v1/experiments").status_code == 401  # the API wants a bearer
        out = browser.post("/ui/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert browser.get("/ui/experiments").status_code == 401


def test_login_refuses_bad_tokens_and_foreign_targets(served: tuple[LiveServer, str]) -> None:
    server, token = served
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/ui/login")
        csrf = browser.cookies["triptych_csrf"]
        bad = browser.post("/ui/login", data={"token": token + "x", "csrf_token": csrf})
        assert bad.status_code == 401 and "not valid" in bad.text
        assert "triptych_session" not in bad.headers.get("set-cookie", "")
        for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            done = browser.post(
                "/ui/login", data={"token": token, "csrf_token": csrf, "next": target}
            )
            assert done.headers["location"] == "/ui/", target


def test_a_form_without_its_csrf_token_is_refused(served: tuple[LiveServer, str]) -> None:
    server, token = served
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/ui/login")
        csrf = browser.cookies["triptych_csrf"]
        for data, headers in (
            ({"token": token}, {}),  # no field
            ({"token": token, "csrf_token": "forged" * 8}, {}),  # field does not match
            ({"token": token, "csrf_token": csrf}, {"origin": "https://evil.example"}),
        ):
            refused = browser.post("/ui/login", data=data, headers=headers)
            assert refused.status_code == 403, data
            assert "triptych_session" not in refused.headers.get("set-cookie", "")
        browser.cookies.clear()  # a cross-site request carries no cookie it could match
        assert (
            browser.post("/ui/login", data={"token": token, "csrf_token": csrf}).status_code == 403
        )


def test_state_changing_ui_routes_must_declare_csrf() -> None:
    app = FastAPI()
    app.add_api_route(
        "/ui/read", lambda: {}, methods=["GET"], dependencies=[requires(Permission.READ)]
    )
    check_ui_routes(app)  # pages that only read need nothing
    app.add_api_route(
        "/ui/runs/{run_id}/delete",
        lambda: {},
        methods=["POST"],
        dependencies=[requires(Permission.WRITE)],
    )
    with pytest.raises(UndeclaredRoute, match=re.escape("/ui/runs/{run_id}/delete")):
        check_ui_routes(app)
    safe = FastAPI()
    safe.add_api_route(
        "/ui/runs/{run_id}/delete",
        lambda: {},
        methods=["POST"],
        dependencies=[requires(Permission.WRITE), csrf_protected()],
    )
    check_ui_routes(safe)


# -- the commands -------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}


def _triptych(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triptych", "server", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_admin_prints_the_token_once_and_refuses_a_second(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    made = _triptych("create-admin", "alice", "--store", db, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert accounts.parse_token(secret) is not None and "shown this once" in made.stderr
    again = _triptych("create-admin", "alice", "--store", db, cwd=tmp_path)
    assert again.returncode == 1 and "'alice' already exists" in again.stderr
    assert again.stdout == ""
    listed = _triptych("token", "list", "--store", db, cwd=tmp_path)
    assert secret[4:16] in listed.stdout and secret not in listed.stdout
    store = SqlStore(db)
    try:
        user = store.authenticate(*accounts.parse_token(secret))  # type: ignore[misc]
        assert user is not None and user.role_on("*") == "admin"
        assert len(store.list_users()) == 1
    finally:
        store.close()
    revoked = _triptych("token", "revoke", secret, "--store", db, cwd=tmp_path)  # a whole token
    assert revoked.returncode == 0 and secret not in revoked.stdout + revoked.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "grant", "bob", "viewer"], "user 'bob' not found"),
        (["user", "add", "bad name"], "invalid user name"),
        (["user", "add", "bob", "--role", "superuser"], "unknown role"),
        (["token", "create", "nobody"], "user 'nobody' not found"),
        (["token", "create", "alice", "--expires-days", "0"], "expires after"),
        (["token", "revoke", "nothing"], "token 'nothing' not found"),
        (["create-admin", "eve", "--store", "http://127.0.0.1:9"], "keeps no users"),
    ],
)
def test_bad_account_commands(tmp_path: Path, args: list[str], message: str) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    SqlStore(db).close()
    store = [] if "--store" in args else ["--store", db]
    if args[:2] == ["token", "create"] and args[2] == "alice":
        assert _triptych("user", "add", "alice", *store, cwd=tmp_path).returncode == 0
    done = _triptych(*args, *store, cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr, done.stderr


def test_with_auth_the_server_may_listen_on_every_interface(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "triptych", "server", "--auth", "--host", "0.0.0.0",
         "--port", str(port), "--store", db],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert health.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert "auth on" in out and "no admin yet" in out


def test_the_api_page_loads_nothing_from_another_host(served: tuple[LiveServer, str]) -> None:
    """/docs is public under --auth too, and its Swagger UI comes from the package."""
    server, _ = served
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    referenced = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(referenced)
    assert not [u for u in referenced if re.match(r"^(https?:)?//", u)], referenced
    assert not re.search(r"https?://", page.text)
    assert "validatorUrl" in page.text
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        asset = httpx.get(f"{server.url}/docs/assets/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > 100_000
    assert httpx.get(f"{server.url}/docs/assets/LICENSE").status_code == 404
    assert httpx.get(f"{server.url}/docs/assets/..%2Fswagger-ui").status_code == 404


def test_a_revocation_reaches_every_worker_at_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'workers.db'}"
    store = SqlStore(db)
    secret = accounts.create_admin(store, "root").secret
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "triptych", "server", "--auth", "--workers", "2",
         "--port", str(port), "--store", db],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/experiments"
    headers = {"authorization": f"Bearer {secret}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            try:
                assert httpx.get(url, headers=headers, timeout=5).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for _ in range(10):  # new connections, spread over both workers
            assert httpx.get(url, headers=headers, timeout=5).status_code == 200
        store.revoke_token(secret[4:16])
        assert [httpx.get(url, headers=headers, timeout=5).status_code for _ in range(10)] == [
            401
        ] * 10
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        store.close()
