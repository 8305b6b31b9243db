"""fsspec implementation of the artifact store: ``file://`` (default) and ``s3://``.

Layout under the root: ``blobs/sha256/<2 hex>/<digest>`` for complete blobs and ``tmp/`` for
uploads in flight on local disks. Local writes hash while copying into ``tmp/`` and rename into
place; object stores need the digest first (it is the key), so the file is hashed, then
uploaded straight to its key, which S3 makes visible only once the upload completes.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from triptych._lazy import require
from triptych.artifacts.base import (
    CHUNK,
    ArtifactStore,
    Blob,
    VerifyingReader,
    check_digest,
    digest_bytes,
    digest_file,
)
from triptych.errors import InvalidInput, NotFound, StoreUnavailable
from triptych.uris import artifact_backend, scheme_of


class FsspecArtifactStore(ArtifactStore):
    """Blobs in any fsspec filesystem; ``root`` is a local path, ``file://…`` or ``s3://…``."""

    def __init__(self, root: str, *, s3_endpoint_url: str = "", **storage_options: Any) -> None:
        backend = artifact_backend(root)
        if backend.module:
            require(backend.module, backend.extra or "")
        import fsspec

        self.scheme = scheme_of(root)
        if self.scheme == "s3" and s3_endpoint_url:
            storage_options.setdefault("endpoint_url", s3_endpoint_url)
        if self.scheme == "file":
            local = root[len("file://") :] if root.startswith("file://") else root
            self._local_root: Path | None = Path(local).expanduser().resolve()
            self.root = str(self._local_root)
            self._fs = fsspec.filesystem("file")
            self._base = self.root
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
        if self._local_root is not None:
            with open(local_path, "rb") as src:
                return self._put_local_stream(src)
        blob = digest_file(local_path)
        if not self.exists(blob.digest):
            self._guard(lambda: self._fs.put_file(str(local_path), self._key(blob.digest)))
        return blob

    def put_bytes(self, data: bytes) -> Blob:
        blob = digest_bytes(data)
        if self.exists(blob.digest):
            return blob
        if self._local_root is not None:
            self._commit_local(blob.digest, lambda f: f.write(data))
        else:
            self._guard(lambda: self._fs.pipe_file(self._key(blob.digest), data))
        return blob

    def _put_local_stream(self, src: Any) -> Blob:
        h = hashlib.sha256()
        size = 0
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            digest = h.hexdigest()
            final = Path(self._key(digest))
            if final.exists():
                return Blob(digest, size)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # atomic: readers see nothing or the whole blob
            return Blob(digest, size)
        finally:
            tmp.unlink(missing_ok=True)

    def _commit_local(self, digest: str, write: Any) -> None:
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as out:
                write(out)
            final = Path(self._key(digest))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

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
        except OSError as e:
            raise StoreUnavailable(f"cannot read {self.root}: {e}") from e
        reader = VerifyingReader(raw, digest, f"{digest[:12]}… in {self.root}")
        try:
            yield reader
        finally:
            reader.close()

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        with suppress(FileNotFoundError):
            self._fs.rm_file(key)

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except FileNotFoundError as e:
            raise NotFound(f"{self.root}: {e}") from e
        except (OSError, PermissionError) as e:
            raise StoreUnavailable(f"artifact store {self.root} failed: {e}") from e
