"""Resumable uploads of large artifacts through the team server: chunks that say where they
start, a restarted server that keeps what it had, and the refusals that keep it honest."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triptych.artifacts import http as http_artifacts
from triptych.artifacts.fs import FsspecArtifactStore
from triptych.artifacts.http import HttpArtifactStore
from triptych.errors import InvalidInput
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

KIB = 1024


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_artifacts, "RESUMABLE_AT", 256 * KIB)
    monkeypatch.setattr(http_artifacts, "UPLOAD_CHUNK", 128 * KIB)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, FsspecArtifactStore]]:
    behind = FsspecArtifactStore(str(tmp_path / "server-artifacts"))
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    with LiveServer(store, behind) as server:
        server.app.state.upload_dir = tmp_path / "uploads"
        yield server, behind
    store.close()


def _file(path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_large_file_goes_up_in_chunks_and_reads_back(
    live: tuple[LiveServer, FsspecArtifactStore], small_chunks: None, tmp_path: Path
) -> None:
    server, behind = live
    path, digest = _file(tmp_path / "model.bin", 1000 * KIB)
    remote = HttpArtifactStore(server.url)
    patches: list[int] = []
    original = remote.client.patch

    def counting_patch(*args, **kwargs):  # type: ignore[no-untyped-def]
        patches.append(int(kwargs["headers"]["upload-offset"]))
        return original(*args, **kwargs)

    remote.client.patch = counting_patch  # type: ignore[method-assign]
    blob = remote.put_file(path)
    assert blob.digest == digest and behind.exists(digest)
    assert patches == [
        0,
        128 * KIB,
        256 * KIB,
        384 * KIB,
        512 * KIB,
        640 * KIB,
        768 * KIB,
        896 * KIB,
    ]
    with remote.open(digest) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest
    assert list((tmp_path / "uploads").glob("*.part")) == []  # nothing left behind
    assert remote.put_file(path) == blob  # stored already: nothing is sent again


def test_a_chunk_at_the_wrong_offset_is_told_where_to_resume(
    live: tuple[LiveServer, FsspecArtifactStore], tmp_path: Path
) -> None:
    server, behind = live
    data = os.urandom(300 * KIB)
    digest = hashlib.sha256(data).hexdigest()
    url = f"{server.url}/api/v1/uploads/{digest}"
    length = str(len(data))
    first = httpx.patch(
        url, content=data[: 100 * KIB], headers={"upload-offset": "0", "upload-length": length}
    )
    assert first.status_code == 204 and first.headers["upload-offset"] == str(100 * KIB)
    again = httpx.patch(
        url, content=data[: 100 * KIB], headers={"upload-offset": "0", "upload-length": length}
    )
    assert again.status_code == 409 and again.headers["upload-offset"] == str(100 * KIB)
    assert httpx.head(url).headers["upload-offset"] == str(100 * KIB)
    done = httpx.patch(
        url,
        content=data[100 * KIB :],
        headers={"upload-offset": str(100 * KIB), "upload-length": length},
    )
    assert done.status_code == 201 and behind.exists(digest)
    assert httpx.head(url).headers["upload-complete"] == "?1"


def test_bytes_that_do_not_match_the_digest_are_dropped(
    live: tuple[LiveServer, FsspecArtifactStore], tmp_path: Path
) -> None:
    server, behind = live
    digest = hashlib.sha256(b"what the client claims").hexdigest()
    url = f"{server.url}/api/v1/uploads/{digest}"
    bad = httpx.patch(
        url,
        content=b"something else entirely",
        headers={"upload-offset": "0", "upload-length": "23"},
    )
    assert bad.status_code == 400 and "digest" in bad.json()["message"]
    assert not behind.exists(digest)
    assert httpx.head(url).headers["upload-offset"] == "0"  # the partial upload is gone
    longer = httpx.patch(
        url, content=b"x" * 50, headers={"upload-offset": "0", "upload-length": "10"}
    )
    assert longer.status_code == 400 and httpx.head(url).headers["upload-offset"] == "0"
    for headers in ({"upload-offset": "-1", "upload-length": "10"}, {"upload-length": "10"}):
        assert httpx.patch(url, content=b"x", headers=headers).status_code == 400
    with pytest.raises(InvalidInput):
        HttpArtifactStore(server.url)._upload_url("../../etc/passwd")


def _serve(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TMPDIR"] = str(tmp_path / "tmp")  # the server's partial uploads live here
    (tmp_path / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triptych",
            "server",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 'team.db'}",
            "--artifacts",
            str(tmp_path / "server-artifacts"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")


@pytest.mark.slow
def test_an_upload_resumes_where_a_killed_server_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from triptych.testing.process import free_port

    monkeypatch.setattr(http_artifacts, "RESUMABLE_AT", 1024 * KIB)
    monkeypatch.setattr(http_artifacts, "UPLOAD_CHUNK", 256 * KIB)
    path, digest = _file(tmp_path / "big.bin", 16 * 1024 * KIB)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(port, tmp_path)
    killed_at: list[int] = []

    def kill_midway() -> None:
        probe = f"{url}/api/v1/uploads/{digest}"
        while True:
            try:
                held = int(httpx.head(probe, timeout=2).headers.get("upload-offset", "0"))
            except httpx.TransportError:
                held = 0
            if held >= 2 * 1024 * KIB:
                server.send_signal(signal.SIGKILL)
                server.wait()
                killed_at.append(held)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_midway, daemon=True)
    watcher.start()
    remote = HttpArtifactStore(url)
    result: list[object] = []

    def upload() -> None:
        with caplog.at_level(logging.INFO, logger="triptych.artifacts.http"):
            result.append(remote.put_file(path))

    uploader = threading.Thread(target=upload)
    uploader.start()
    watcher.join(timeout=120)
    assert killed_at, "the upload finished before the server could be killed"
    restarted = _serve(port, tmp_path)  # same port, same artifacts, same partial uploads
    try:
        uploader.join(timeout=120)
        assert result and getattr(result[0], "digest", None) == digest
        resumed = [r for r in caplog.records if r.getMessage().startswith("resuming the upload")]
        assert resumed, "the client started again from byte 0"
        at = int(resumed[0].getMessage().split(" at byte ")[1].split()[0])
        assert at >= killed_at[0] - 256 * KIB  # at most the chunk in flight was lost
        assert FsspecArtifactStore(str(tmp_path / "server-artifacts")).exists(digest)
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.wait(timeout=60)
