"""``triptych server`` as a user starts it: a real process answering /health, the Python API
tracking through it with TRIPTYCH_TRACKING_URI, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triptych.store.sql.store import SqlStore
from triptych.testing.process import free_port


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "triptych", "server", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"{url}/health", timeout=2).json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not answer /health")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    return out


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'team.db'}"


@pytest.fixture
def server(tmp_path: Path, db: str) -> Iterator[str]:
    port = free_port()
    artifacts = str(tmp_path / "server-artifacts")
    process = _start(["--port", str(port), "--store", db, "--artifacts", artifacts], tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_healthy(url, process)["status"] == "ok"
        yield url
    finally:
        out = _stop(process)
        assert process.returncode in (0, 130), out  # 130: stopped by Ctrl-C, as shells expect
    assert "TRIPTYCH_TRACKING_URI=" + url in out and "Traceback" not in out


def test_server_answers_health_and_the_api(server: str) -> None:
    assert httpx.get(f"{server}/api/v1/experiments").json() == []
    assert "/api/v1/runs/search" in httpx.get(f"{server}/openapi.json").json()["paths"]
    assert httpx.get(f"{server}/docs").status_code == 200


def test_tracking_through_the_server(
    server: str, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import triptych

    monkeypatch.setenv("TRIPTYCH_TRACKING_URI", server)
    monkeypatch.setenv("TRIPTYCH_ARTIFACT_URI", server)  # artifact bytes through it too
    with triptych.start_run(experiment="remote", name="ridge") as run:
        triptych.log_param("alpha", 0.5)
        for step in range(100):
            triptych.log_metric("loss", 1 / (step + 1), step=step)
        triptych.log_text("hello team", "notes/readme.txt")
    assert triptych.Client().read_artifact(run.run_id, "notes/readme.txt") == b"hello team"
    stored = list((tmp_path / "server-artifacts").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == b"hello team" for p in stored)
    local = SqlStore(db)  # what the server wrote, read straight from its database
    try:
        got = local.get_run(run.run_id)
        assert (got.name, got.status.value, dict(got.params)) == (
            "ridge",
            "FINISHED",
            {"alpha": "0.5"},
        )
        assert len(local.get_metric_history(run.run_id, "loss")) == 100
        assert got.fingerprint is not None  # the triptych travelled too
    finally:
        local.close()


def test_several_workers_share_the_store(tmp_path: Path, db: str) -> None:
    port = free_port()
    process = _start(["--port", str(port), "--store", db, "--workers", "2"], tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        with httpx.Client(base_url=f"{url}/api/v1") as api:
            ids = {api.post("/experiments", json={"name": f"e{i}"}).json() for i in range(10)}
            assert len(ids) == 10
            assert len(api.get("/experiments").json()) == 10
    finally:
        out = _stop(process)
    assert process.returncode in (0, 130) and "Traceback" not in out, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "without authentication"),
        (["--store", "http://127.0.0.1:1"], "cannot be another server"),
        (["--workers", "0"], "at least 1"),
    ],
)
def test_refused_settings(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "server", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
