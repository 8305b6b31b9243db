"""``triptych smoke-test``: against a real ``triptych serve`` and a misbehaving ASGI server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from serving_kit import Models, ServerProcess, ServerThread, client, env, free_port, make_models
from triptych.errors import Conflict, InvalidInput
from triptych.release.smoke import SmokeTestFailed, smoke_test


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return make_models(tmp_path_factory.mktemp("smoke") / "home")


@pytest.fixture(scope="module")
def server(models: Models) -> Iterator[ServerProcess]:
    proc = ServerProcess(models.home, "models:/diabetes@champion")
    yield proc
    proc.stop()


def test_passes_against_triptych_serve(models: Models, server: ServerProcess) -> None:
    c = client(models.home)
    result = smoke_test(server.url, model="models:/diabetes@champion", client=c)
    assert (result.status, result.rows, result.attempts) == (200, 5, 2)
    assert result.model["name"] == "diabetes" and result.model["version"] == 1
    assert len(result.request_id) == 32
    # Without --model: the server's own model and its stored example.
    plain = smoke_test(server.url + "/", client=c)
    assert plain.rows == 5 and plain.example.startswith("input example of runs:/")


def test_a_server_with_another_version_fails(models: Models, server: ServerProcess) -> None:
    with pytest.raises(
        Conflict, match=r"answered with diabetes version 1 \(runs:/.*expected diabetes version 2"
    ):
        smoke_test(server.url, model="models:/diabetes/2", client=client(models.home))


def test_waits_for_a_server_that_is_starting(models: Models) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "triptych", "serve", "models:/diabetes/2", "--port", str(port)],
        cwd=models.home,
        env=env(models.home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = smoke_test(
            f"http://127.0.0.1:{port}",
            model="models:/diabetes/2",
            retries=8,
            client=client(models.home),
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert result.attempts > 2 and result.model["version"] == 2


def test_an_unreachable_server_fails_after_the_retries() -> None:
    waits: list[float] = []
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(SmokeTestFailed, match="failed after 3 tries") as caught:
        smoke_test(url, retries=2, timeout=1, sleep=waits.append)
    assert waits == [0.5, 1.0]
    assert "hunter2" not in str(caught.value)  # credentials never printed
    for bad in ("127.0.0.1:8080", "ftp://x", ""):
        with pytest.raises(InvalidInput):
            smoke_test(bad)


class Fake:
    """A scoring server that gets things wrong on purpose."""

    def __init__(
        self,
        metadata: dict[str, Any],
        *,
        status: int = 200,
        answers: int | None = None,
        unavailable: int = 0,
    ) -> None:
        self.metadata = metadata
        self.status = status
        self.answers = answers
        self.unavailable = unavailable
        self.calls: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        path = scope["path"]
        self.calls.append(path)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = 200, {}
        if path == "/metadata":
            if self.unavailable:
                self.unavailable -= 1
                status = 503
            answer = self.metadata
        elif path == "/predict":
            rows = len(json.loads(body)["records"])
            status = self.status
            answer = (
                {
                    "predictions": [1.0] * (rows if self.answers is None else self.answers),
                    "model": {k: self.metadata.get(k) for k in ("name", "version", "uri")},
                    "request_id": "0192f0c2a1b27c3d8e4f5a6b7c8d9e0f",
                }
                if status == 200
                else {"detail": [{"loc": ["age"], "msg": "missing"}]}
            )
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


def serve(app: Fake) -> Iterator[str]:
    thread = ServerThread(app)
    try:
        yield thread.url
    finally:
        thread.stop()


def test_a_wrong_answer_shape_fails(models: Models) -> None:
    from triptych.models import registry

    c = client(models.home)
    v1 = registry.get("models:/diabetes/1", client=c)
    metadata = {"name": "diabetes", "version": 1, "uri": v1.source, "columns": []}
    for url in serve(Fake(metadata, answers=1)):
        with pytest.raises(SmokeTestFailed, match="sent 5 rows and got 1 predictions"):
            smoke_test(url, client=c)
    app = Fake(metadata, status=422)
    for url in serve(app):
        with pytest.raises(SmokeTestFailed, match="answered 422"):
            smoke_test(url, client=c, sleep=lambda s: None)
    assert app.calls.count("/predict") == 1  # a 4xx is an answer: never retried
    # A 503 while starting is retried; a model the metadata does not list is refused.
    other = {
        "name": "x",
        "version": 9,
        "uri": "runs:/" + "0" * 32 + "/model",
        "columns": [{"name": "age", "dtype": "float"}],
    }
    app = Fake(other, unavailable=2)
    for url in serve(app):
        result = smoke_test(url, client=c, sleep=lambda s: None)
    assert app.calls.count("/metadata") == 3 and result.example.startswith("one row built")


def test_cli_exit_codes(models: Models, server: ServerProcess) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "triptych", "smoke-test", *args],
            capture_output=True,
            text=True,
            env=env(models.home),
            cwd=models.home,
        )

    ok = cli(server.url, "--model", "models:/diabetes@champion", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["model"]["version"] == 1
    human = cli(server.url)
    assert human.returncode == 0 and human.stdout.startswith("ok ")
    started = time.monotonic()
    bad = cli(f"http://127.0.0.1:{free_port()}", "--retries", "1", "--timeout", "1")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "failed after 2 tries" in bad.stderr and time.monotonic() - started < 30
    wrong = cli(server.url, "--model", "models:/diabetes/3")
    assert wrong.returncode == 1 and "expected diabetes version 3" in wrong.stderr
