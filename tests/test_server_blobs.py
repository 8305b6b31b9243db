"""Artifact bytes through the team server: streamed both ways, deduplicated, verified on the
client, and a broken download resumed from where it stopped."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triptych.artifacts.fs import FsspecArtifactStore
from triptych.artifacts.http import HttpArtifactStore
from triptych.errors import IntegrityError, InvalidInput, NotFound
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer


@pytest.fixture
def behind(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "server-artifacts"))


@pytest.fixture
def server(tmp_path: Path, behind: FsspecArtifactStore) -> Iterator[LiveServer]:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    with LiveServer(store, behind) as live:
        yield live
    store.close()


@pytest.fixture
def remote(server: LiveServer) -> Iterator[HttpArtifactStore]:
    client = HttpArtifactStore(server.url)
    yield client
    client._http.close()


def test_bytes_and_files_round_trip(
    remote: HttpArtifactStore, behind: FsspecArtifactStore, tmp_path: Path
) -> None:
    small = remote.put_bytes(b"hello")
    assert small.digest == hashlib.sha256(b"hello").hexdigest() and small.size == 5
    assert behind.get_bytes(small.digest) == b"hello"  # stored by the server's own store
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 7))  # several chunks, not a round number
    blob = remote.put_file(big)
    assert remote.exists(blob.digest) and blob.size == big.stat().st_size
    out = remote.download(blob.digest, tmp_path / "back" / "big.bin")
    assert out.read_bytes() == big.read_bytes()
    assert remote.get_bytes(small.digest) == b"hello"
    remote.delete(small.digest)
    assert not remote.exists(small.digest)
    remote.delete(small.digest)  # missing is fine


def test_identical_bytes_are_uploaded_once(server: LiveServer, remote: HttpArtifactStore) -> None:
    remote.put_bytes(b"same")
    puts: list[str] = []
    original = remote._http.put

    def counting_put(*args, **kwargs):  # type: ignore[no-untyped-def]
        puts.append(args[0])
        return original(*args, **kwargs)

    remote._http.put = counting_put  # type: ignore[method-assign]
    remote.put_bytes(b"same")
    assert puts == []  # the server had the digest: nothing was sent


def test_missing_and_invalid_digests(remote: HttpArtifactStore) -> None:
    with pytest.raises(NotFound), remote.open("0" * 64):
        pass
    assert not remote.exists("0" * 64)
    with pytest.raises(InvalidInput):
        remote.exists("../../etc/passwd")


def test_an_upload_must_match_its_digest(server: LiveServer) -> None:
    response = httpx.put(f"{server.url}/api/v1/blobs/{'a' * 64}", content=b"not those bytes")
    assert response.status_code == 400 and "digest" in response.json()["message"]


def test_a_damaged_blob_is_refused_by_the_client(
    remote: HttpArtifactStore, behind: FsspecArtifactStore, tmp_path: Path
) -> None:
    blob = remote.put_bytes(b"original bytes")
    stored = next((tmp_path / "server-artifacts").rglob(blob.digest))
    stored.write_bytes(b"tampered bytes")
    with pytest.raises(IntegrityError):
        remote.get_bytes(blob.digest)
    with pytest.raises(IntegrityError):
        remote.download(blob.digest, tmp_path / "never.bin")
    assert not (tmp_path / "never.bin").exists()


def test_ranges_let_a_download_resume(server: LiveServer, remote: HttpArtifactStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    blob = remote.put_bytes(data)
    url = f"{server.url}/api/v1/blobs/{blob.digest}"
    tail = httpx.get(url, headers={"range": "bytes=1000000-"})
    assert tail.status_code == 206 and tail.content == data[1_000_000:]


def test_a_broken_connection_is_resumed(remote: HttpArtifactStore) -> None:
    data = os.urandom(4 * 1024 * 1024)
    blob = remote.put_bytes(data)

    class Flaky(httpx.HTTPTransport):
        """Cuts the first response off after 1 MiB, as a dropped connection would."""

        cuts = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.method != "GET" or Flaky.cuts:
                return response
            Flaky.cuts += 1
            stream = response.stream

            class Cut(httpx.SyncByteStream):
                def __iter__(self) -> Iterator[bytes]:
                    sent = 0
                    for chunk in stream:  # type: ignore[union-attr]
                        yield chunk
                        sent += len(chunk)
                        if sent >= 1024 * 1024:
                            raise httpx.ReadError("connection reset", request=request)

                def close(self) -> None:
                    stream.close()  # type: ignore[union-attr]

            return httpx.Response(response.status_code, headers=response.headers, stream=Cut())

    remote._http.close()
    remote._http = httpx.Client(base_url=remote.root, transport=Flaky())
    assert remote.get_bytes(blob.digest) == data
    assert Flaky.cuts == 1
