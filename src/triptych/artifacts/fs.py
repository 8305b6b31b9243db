"""fsspec implementation of the artifact store: ``file://`` (default) and ``s3://``.

Layout under the root: ``blobs/sha256/<2 hex>/<digest>`` for complete blobs and ``tmp/`` for
uploads in flight on local disks. Local writes hash while copying into ``tmp/``, fsync, and
rename into place, so a crash (even a power cut) never leaves a partial blob under a digest; a
killed process may leave a ``tmp/*.part`` file, which nothing reads; opening the store removes
those older than :data:`STALE_PART_SECONDS` (no upload runs that long without writing).

Object stores need the digest first (it is the key), so a file is hashed, then uploaded to its
key while being hashed again: small files in one PUT of the very bytes hashed, larger ones as a
multipart upload completed only when the second hash matches (a file changed meanwhile is
refused and its upload aborted). S3 shows an object only once its upload completes, so no
partial or mismatched blob is ever visible under a digest.

A stored blob of the wrong size (truncated or extended behind the store's back) counts as
missing, so storing the same bytes again repairs it. Backend failures (disk errors, unreachable
endpoints, missing buckets) are raised as :class:`~triptych.errors.NotFound` or
:class:`~triptych.errors.StoreUnavailable`, never as raw OSError or botocore exceptions.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from triptych._lazy import require
from triptych.artifacts.base import (
    CHUNK,
    ArtifactStore,
    Blob,
    VerifyingReader,
    check_digest,
    digest_bytes,
)
from triptych.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    TriptychError,
)
from triptych.uris import artifact_backend, scheme_of

T = TypeVar("T")

# Remote files up to this size are read once into memory and sent in one PUT.
SMALL_UPLOAD = 8 * CHUNK


def _backend_errors(scheme: str) -> tuple[type[BaseException], ...]:
    """Exception types a backend raises besides OSError (imported only when it is in use)."""
    if scheme != "s3":
        return ()
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - s3fs always brings botocore
        return ()
    return (BotoCoreError, ClientError)


STALE_PART_SECONDS = 24 * 3600


class FsspecArtifactStore(ArtifactStore):
    """Blobs in any fsspec filesystem; ``root`` is a local path, ``file://…`` or ``s3://…``."""

    def __init__(self, root: str, *, s3_endpoint_url: str = "", **storage_options: Any) -> None:
        backend = artifact_backend(root)
        if backend.module:
            require(backend.module, backend.extra or "")
        import fsspec

        self.scheme = scheme_of(root)
        self._errors: tuple[type[BaseException], ...] = (
            OSError,
            *_backend_errors(self.scheme),
        )
        if self.scheme == "s3" and s3_endpoint_url:
            storage_options.setdefault("endpoint_url", s3_endpoint_url)
        if self.scheme == "file":
            local = root[len("file://") :] if root.startswith("file://") else root
            self._local_root: Path | None = Path(local).expanduser().resolve()
            self.root = str(self._local_root)
            self._fs = fsspec.filesystem("file")
            self._base = self.root
            self._sweep_stale_parts()
        else:
            self._local_root = None
            self.root = root
            self._fs, self._base = fsspec.core.url_to_fs(root, **storage_options)
            self._base = self._base.rstrip("/")
            if not self._base:
                raise InvalidInput(f"artifact URI {root!r} names no bucket")

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.root!r})"

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._base}/blobs/sha256/{digest[:2]}/{digest}"

    # -- writes -----------------------------------------------------------------------------
    def put_file(self, local_path: Path) -> Blob:
        local_path = Path(local_path)
        if not local_path.is_file():
            raise NotFound(f"no file at {local_path}")
        try:
            src = open(local_path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as e:
            raise InvalidInput(f"cannot read {local_path}: {e.strerror or e}") from e
        with src:
            if self._local_root is not None:
                return self._guard(lambda: self._write_local(lambda out: _copy(src, out)))
            blob = self._guard(lambda: _copy(src, None))  # the key is the digest: hash first
            if self._stored(blob):
                return blob
            src.seek(0)
            if blob.size <= SMALL_UPLOAD:
                data = self._guard(src.read)
                if digest_bytes(data) != blob:
                    raise _changed(local_path)
                self._guard(lambda: self._fs.pipe_file(self._key(blob.digest), data))
            else:
                self._guard(lambda: self._upload_verified(src, blob, local_path))
        return blob

    def put_bytes(self, data: bytes) -> Blob:
        blob = digest_bytes(data)
        if self._stored(blob):
            return blob
        if self._local_root is not None:
            self._guard(lambda: self._write_local(lambda out: _copy(data, out)))
        else:
            self._guard(lambda: self._fs.pipe_file(self._key(blob.digest), data))
        return blob

    def _write_local(self, fill: Callable[[BinaryIO], Blob]) -> Blob:
        """Write through ``fill`` into ``tmp/``, make it durable, rename it to its digest."""
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as out:
                blob = fill(out)
                if self._stored(blob):
                    return blob
                out.flush()
                os.fsync(out.fileno())  # the bytes are on disk before a name points at them
            final = Path(self._key(blob.digest))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # atomic: readers see nothing or the whole blob
            _fsync_dir(final.parent)
            return blob
        finally:
            tmp.unlink(missing_ok=True)

    def _upload_verified(self, src: BinaryIO, blob: Blob, local_path: Path) -> None:
        """Upload to the blob's key, hashing again; complete only if the bytes still match."""
        f = self._fs.open(self._key(blob.digest), "wb", autocommit=False)
        try:
            try:
                sent = _copy(src, f)
            finally:
                f.close()  # sends the last part; nothing is visible before commit()
            if sent != blob:
                raise _changed(local_path)
            f.commit()
        except BaseException:
            with suppress(Exception):
                f.discard()  # aborts the multipart upload
            raise

    def _stored(self, blob: Blob) -> bool:
        """Whether ``blob`` is stored already. One of the wrong size was damaged (truncated,
        extended): it counts as missing, so storing the bytes again repairs it."""
        key = self._key(blob.digest)
        if self._local_root is not None:
            path = Path(key)
            return path.is_file() and path.stat().st_size == blob.size
        try:
            info = self._guard(lambda: self._fs.info(key))
        except NotFound:
            return False
        return bool(info.get("type") == "file" and info.get("size") == blob.size)

    def _sweep_stale_parts(self) -> None:
        """Remove uploads abandoned by killed processes (unmodified for a day)."""
        assert self._local_root is not None
        cutoff = time.time() - STALE_PART_SECONDS
        try:
            entries = list(os.scandir(self._local_root / "tmp"))
        except OSError:
            return
        for entry in entries:
            with suppress(OSError):
                if entry.name.endswith(".part") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)

    def _tmp_path(self) -> Path:
        assert self._local_root is not None
        folder = self._local_root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}.part"

    # -- reads ------------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        if self._local_root is not None:
            return os.path.isfile(key)
        return bool(self._guard(lambda: self._fs.exists(key)))

    @contextmanager
    def open(self, digest: str) -> Iterator[VerifyingReader]:
        key = self._key(digest)
        try:
            raw = self._fs.open(key, "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest[:12]}… is missing from {self.root}") from None
        except self._errors as e:
            raise self._unavailable(e) from e
        reader = VerifyingReader(_Guarded(raw, self), digest, f"{digest[:12]}… in {self.root}")
        try:
            yield reader
        finally:
            with suppress(TriptychError):
                reader.close()

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        with suppress(NotFound):
            self._guard(lambda: self._fs.rm_file(key))

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run a backend call, turning its failures into triptych errors."""
        try:
            return fn()
        except TriptychError:
            raise
        except FileNotFoundError as e:
            raise NotFound(f"{self.root}: {e}") from e
        except self._errors as e:
            raise self._unavailable(e) from e

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"artifact store {self.root} failed: {error}",
            hint="check that the store is reachable and writable (endpoint, bucket, disk)",
        )


class _Guarded:
    """A backend stream whose read errors become triptych errors."""

    def __init__(self, raw: Any, store: FsspecArtifactStore) -> None:
        self._raw = raw
        self._store = store

    def read(self, size: int = -1) -> bytes:
        return self._store._guard(lambda: self._raw.read(size))

    def close(self) -> None:
        self._store._guard(self._raw.close)


def _copy(src: bytes | BinaryIO, out: Any) -> Blob:
    """Write ``src`` to ``out`` (None: nowhere) in chunks; the digest and size of exactly the
    bytes written."""
    if isinstance(src, bytes):
        if out is not None:
            out.write(src)
        return digest_bytes(src)
    h = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return Blob(h.hexdigest(), size)


def _changed(path: Path) -> Conflict:
    return Conflict(
        f"{path} changed while it was being stored",
        hint="log it again once whatever is writing it has finished",
    )


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
