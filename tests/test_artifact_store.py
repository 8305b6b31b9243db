"""The content-addressed artifact store, on a local folder and on S3 (moto server).

Identical bytes are stored once, every read is verified against the digest, a missing or
damaged blob is a triptych error, and no partial or mismatched blob ever appears.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from triptych.artifacts.base import Blob, VerifyingReader
from triptych.artifacts.fs import SMALL_UPLOAD, FsspecArtifactStore
from triptych.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    TriptychError,
)

MB = 1 << 20
FAST_FAIL = {"config_kwargs": {"retries": {"total_max_attempts": 1}, "connect_timeout": 2}}


@dataclass
class Backend:
    """A store plus direct access to what it wrote, bypassing triptych."""

    name: str
    store: FsspecArtifactStore
    blob_keys: Callable[[], list[str]]  # digests of the stored blobs
    overwrite: Callable[[str, bytes], None]  # replace a blob's bytes behind the store's back


def _local(root: Path) -> Backend:
    store = FsspecArtifactStore(str(root))
    blobs = root / "blobs" / "sha256"

    def keys() -> list[str]:
        return sorted(p.name for p in blobs.rglob("*") if p.is_file())

    def overwrite(digest: str, data: bytes) -> None:
        (blobs / digest[:2] / digest).write_bytes(data)

    return Backend("local", store, keys, overwrite)


def _s3(url: str, endpoint: str) -> Backend:
    import boto3

    store = FsspecArtifactStore(url, s3_endpoint_url=endpoint)
    bucket, prefix = url[len("s3://") :].split("/", 1)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def keys() -> list[str]:
        found = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
        assert all(o["Key"].startswith(f"{prefix}/blobs/sha256/") for o in found)
        return sorted(o["Key"].rsplit("/", 1)[1] for o in found)

    def overwrite(digest: str, data: bytes) -> None:
        key = f"{prefix}/blobs/sha256/{digest[:2]}/{digest}"
        client.put_object(Bucket=bucket, Key=key, Body=data)

    return Backend("s3", store, keys, overwrite)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local(tmp_path / "store")
    return _s3(request.getfixturevalue("s3_bucket"), request.getfixturevalue("s3_endpoint"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- writes -------------------------------------------------------------------------------------
def test_identical_bytes_are_stored_once(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    data = b"the same bytes\n" * 1000
    blobs = [
        store.put_bytes(data),
        store.put_bytes(data),
        store.put_file(_file(tmp_path, "one.bin", data)),
        store.put_file(_file(tmp_path, "two.bin", data)),
    ]
    assert {b.digest for b in blobs} == {_sha(data)}
    assert {b.size for b in blobs} == {len(data)}
    assert backend.blob_keys() == [_sha(data)]

    other = store.put_bytes(data + b"!")
    assert backend.blob_keys() == sorted([_sha(data), other.digest])


def test_concurrent_puts_of_the_same_bytes(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(256 * 1024)
    source = _file(tmp_path, "same.bin", data)
    results: list[Any] = []

    def put(i: int) -> None:
        try:
            results.append(
                backend.store.put_file(source) if i % 2 else backend.store.put_bytes(data)
            )
        except BaseException as e:  # pragma: no cover - reported below
            results.append(e)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {getattr(r, "digest", r) for r in results} == {_sha(data)}
    assert backend.blob_keys() == [_sha(data)]
    assert backend.store.get_bytes(_sha(data)) == data


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 12 * MB], ids=["empty", "1B", "64K", "12M"])
def test_round_trip(backend: Backend, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    blob = backend.store.put_file(_file(tmp_path, "src.bin", data))
    assert (blob.digest, blob.size) == (_sha(data), size)
    assert backend.store.exists(blob.digest)

    assert backend.store.get_bytes(blob.digest) == data

    out = backend.store.download(blob.digest, tmp_path / "out" / "deep" / "copy.bin")
    assert out.read_bytes() == data
    assert [p.name for p in out.parent.iterdir()] == ["copy.bin"]  # no .triptych-part left

    chunks = []
    with backend.store.open(blob.digest) as reader:
        while chunk := reader.read(1_000_003):
            chunks.append(chunk)
    assert b"".join(chunks) == data

    assert backend.store.put_bytes(data) == blob  # stored once
    assert backend.blob_keys() == [blob.digest]


@pytest.mark.s3
def test_large_s3_files_use_a_multipart_upload(s3_bucket: str, s3_endpoint: str, tmp_path: Path):
    import boto3

    data = os.urandom(12 * MB)
    assert len(data) > SMALL_UPLOAD
    store = FsspecArtifactStore(s3_bucket, s3_endpoint_url=s3_endpoint)
    blob = store.put_file(_file(tmp_path, "big.bin", data))
    bucket, prefix = s3_bucket[len("s3://") :].split("/", 1)
    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").head_object(
        Bucket=bucket, Key=f"{prefix}/blobs/sha256/{blob.digest[:2]}/{blob.digest}"
    )
    assert "-" in head["ETag"]  # the ETag of a completed multipart upload: "<md5>-<parts>"
    assert head["ContentLength"] == len(data)
    assert store.get_bytes(blob.digest) == data


@pytest.mark.s3
@pytest.mark.parametrize("size", [100, 12 * MB], ids=["one-put", "multipart"])
def test_s3_refuses_a_file_that_changes_while_stored(
    s3_bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The key is the digest, so a file is hashed before it is sent; a file rewritten in
    between must not end up stored under the digest of its old bytes."""
    import boto3

    data = os.urandom(size)
    source = _file(tmp_path, "moving.bin", data)
    backend = _s3(s3_bucket, s3_endpoint)
    fs = backend.store._fs
    real_info = fs.info

    def look_then_rewrite(path: str, **kwargs: Any) -> Any:
        # The store looks for the blob between hashing the file and sending it.
        try:
            return real_info(path, **kwargs)
        finally:
            source.write_bytes(b"rewritten by someone else" + data[25:])  # same size

    monkeypatch.setattr(fs, "info", look_then_rewrite)
    with pytest.raises(Conflict, match="changed while it was being stored"):
        backend.store.put_file(source)
    monkeypatch.undo()

    assert backend.blob_keys() == []
    bucket = s3_bucket[len("s3://") :].split("/", 1)[0]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    blob = backend.store.put_file(source)  # once the file is still, it stores fine
    assert backend.store.get_bytes(blob.digest) == source.read_bytes()


# -- damaged, missing, invalid ------------------------------------------------------------------
DAMAGE = [
    pytest.param(lambda d: b"X" + d[1:], True, id="same-size"),
    pytest.param(lambda d: d[:-1], False, id="truncated"),
    pytest.param(lambda d: d + b"extra", False, id="extended"),
    pytest.param(lambda d: b"", False, id="emptied"),
]


@pytest.mark.parametrize(("damage", "same_size"), DAMAGE)
def test_tampered_blobs_are_detected(
    backend: Backend, tmp_path: Path, damage: Callable[[bytes], bytes], same_size: bool
) -> None:
    data = os.urandom(3 * MB + 7)
    blob = backend.store.put_bytes(data)
    backend.overwrite(blob.digest, damage(data))

    with pytest.raises(IntegrityError, match="does not match its digest") as info:
        backend.store.get_bytes(blob.digest)
    assert "delete the blob" in str(info.value)

    destination = tmp_path / "dl" / "model.bin"
    with pytest.raises(IntegrityError):
        backend.store.download(blob.digest, destination)
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []  # no temp file left either

    with backend.store.open(blob.digest) as reader, pytest.raises(IntegrityError):
        for _ in reader:
            pass


@pytest.mark.parametrize(("damage", "same_size"), DAMAGE)
def test_storing_the_bytes_again_repairs_a_damaged_blob(
    backend: Backend, tmp_path: Path, damage: Callable[[bytes], bytes], same_size: bool
) -> None:
    data = os.urandom(2 * MB + 3)
    source = _file(tmp_path, "src.bin", data)
    puts: list[Callable[[], Blob]] = [
        lambda: backend.store.put_bytes(data),
        lambda: backend.store.put_file(source),
    ]
    for put in puts:
        blob = put()
        backend.overwrite(blob.digest, damage(data))
        assert put() == blob
        if same_size:  # indistinguishable without reading it all: the hint says delete it
            with pytest.raises(IntegrityError):
                backend.store.get_bytes(blob.digest)
            backend.store.delete(blob.digest)
            put()
        assert backend.store.get_bytes(blob.digest) == data
        assert backend.blob_keys() == [blob.digest]
    if backend.name == "local":
        assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_missing_blobs_are_not_found(backend: Backend, tmp_path: Path) -> None:
    digest = _sha(b"never stored")
    assert not backend.store.exists(digest)
    with pytest.raises(NotFound):
        backend.store.get_bytes(digest)
    with pytest.raises(NotFound), backend.store.open(digest):
        pass  # pragma: no cover
    destination = tmp_path / "dl" / "x.bin"
    with pytest.raises(NotFound):
        backend.store.download(digest, destination)
    assert not destination.parent.exists()
    backend.store.delete(digest)  # deleting what is not there is a no-op

    blob = backend.store.put_bytes(b"here, then gone")
    backend.store.delete(blob.digest)
    assert not backend.store.exists(blob.digest)
    with pytest.raises(NotFound):
        backend.store.get_bytes(blob.digest)
    assert backend.blob_keys() == []


BAD_DIGESTS = [
    "../x",
    "../../etc/passwd",
    "A" * 64,
    _sha(b"x").upper(),
    "abc",
    _sha(b"x")[:-1],
    _sha(b"x") + "0",
    "g" * 64,
    "/" + "0" * 63,
    "0" * 62 + "/x",
    "",
    None,
    b"0" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
def test_invalid_digests_never_reach_storage(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest: Any
) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"storage touched: {name}")

    monkeypatch.setattr(backend.store, "_fs", Untouchable())
    destination = tmp_path / "dl" / "x.bin"
    calls = {
        "exists": lambda: backend.store.exists(digest),
        "open": lambda: backend.store.open(digest).__enter__(),
        "get_bytes": lambda: backend.store.get_bytes(digest),
        "download": lambda: backend.store.download(digest, destination),
        "delete": lambda: backend.store.delete(digest),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput, match="invalid sha256 digest"):
            call()
        assert not destination.parent.exists(), name
    if backend.name == "local":
        assert not (tmp_path / "store").exists()


def test_put_file_needs_a_file(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        backend.store.put_file(tmp_path / "missing.bin")
    with pytest.raises(NotFound):
        backend.store.put_file(tmp_path)
    assert backend.blob_keys() == []


# -- the verifying reader -----------------------------------------------------------------------
class _Stream:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out

    def close(self) -> None:
        pass


def test_reader_read_zero_is_not_eof() -> None:
    data = b"abcdef"
    reader = VerifyingReader(_Stream(data), _sha(data), "test")
    assert reader.read(0) == b""  # used to run the digest check on a half-read stream
    assert reader.read(3) + reader.read(0) + reader.read() == data
    assert reader.read() == b""


def test_reader_mismatch_keeps_failing() -> None:
    reader = VerifyingReader(_Stream(b"damaged"), _sha(b"original"), "test")
    assert reader.read() == b"damaged"
    with pytest.raises(IntegrityError):
        reader.read()
    with pytest.raises(IntegrityError):  # a retry must not see a clean EOF
        reader.read()


# -- local only ---------------------------------------------------------------------------------
def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    backend = _local(tmp_path / "store")
    data = os.urandom(2 * MB)
    source = _file(tmp_path, "src.bin", data)
    backend.store.put_bytes(b"small")
    backend.store.put_file(source)
    backend.store.put_file(source)  # stored already: the copy is dropped
    backend.store.put_bytes(data)
    assert list((tmp_path / "store" / "tmp").glob("*")) == []
    assert backend.blob_keys() == sorted([_sha(b"small"), _sha(data)])
    assert backend.store.root == str((tmp_path / "store").resolve())


def test_local_root_as_file_url(tmp_path: Path) -> None:
    store = FsspecArtifactStore(f"file://{tmp_path / 'store'}")
    blob = store.put_bytes(b"via url")
    assert (tmp_path / "store" / "blobs" / "sha256" / blob.digest[:2] / blob.digest).is_file()


def test_local_store_that_cannot_write_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store root should be")
    store = FsspecArtifactStore(str(blocker))
    with pytest.raises(StoreUnavailable, match="failed"):
        store.put_bytes(b"x")
    with pytest.raises(StoreUnavailable):
        store.put_file(_file(tmp_path, "src.bin", b"x"))


# -- S3 failures --------------------------------------------------------------------------------
@pytest.mark.s3
def test_s3_missing_bucket_is_a_triptych_error(s3_bucket: str, s3_endpoint: str, tmp_path: Path):
    store = FsspecArtifactStore("s3://no-such-bucket-here/artifacts", s3_endpoint_url=s3_endpoint)
    digest = _sha(b"x")
    assert not store.exists(digest)
    with pytest.raises(NotFound, match="bucket does not exist"):
        store.put_bytes(b"x")
    with pytest.raises(NotFound, match="bucket does not exist"):
        store.put_file(_file(tmp_path, "small.bin", b"x"))
    with pytest.raises(NotFound, match="bucket does not exist"):
        store.put_file(_file(tmp_path, "big.bin", os.urandom(SMALL_UPLOAD + 1)))
    with pytest.raises(NotFound):
        store.get_bytes(digest)
    with pytest.raises(NotFound):
        store.download(digest, tmp_path / "dl" / "x.bin")
    assert not (tmp_path / "dl").exists()


@pytest.mark.s3
def test_s3_unreachable_endpoint_is_store_unavailable(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    store = FsspecArtifactStore(s3_bucket, s3_endpoint_url=endpoint, **FAST_FAIL)
    digest = _sha(b"x")
    calls: dict[str, Callable[[], object]] = {
        "exists": lambda: store.exists(digest),
        "put_bytes": lambda: store.put_bytes(b"x"),
        "put_file": lambda: store.put_file(_file(tmp_path, "src.bin", b"x")),
        "get_bytes": lambda: store.get_bytes(digest),
        "download": lambda: store.download(digest, tmp_path / "dl" / "x.bin"),
        "delete": lambda: store.delete(digest),
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable, match="Could not connect") as info:
            call()
        assert isinstance(info.value, TriptychError), name
        assert info.value.hint
    assert not (tmp_path / "dl").exists()
