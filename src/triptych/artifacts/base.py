"""The artifact store contract: immutable blobs named by the sha256 of their bytes.

Identical bytes are stored once. A blob becomes visible only when complete (temp file +
rename locally, a completed PUT or multipart upload on S3), so a crash never leaves a partial
artifact under a digest. Every read verifies the digest and raises
:class:`~triptych.errors.IntegrityError` on a mismatch. Implementations are thread-safe.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from triptych.errors import IntegrityError, InvalidInput

CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def check_digest(digest: str) -> str:
    """A digest is 64 lowercase hex characters; anything else never reaches a path."""
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
        raise InvalidInput(f"invalid sha256 digest {digest!r}")
    return digest


def digest_bytes(data: bytes) -> Blob:
    return Blob(hashlib.sha256(data).hexdigest(), len(data))


def digest_file(path: Path) -> Blob:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Blob(h.hexdigest(), size)


class Readable(Protocol):
    """What :class:`VerifyingReader` needs from a stream."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class VerifyingReader:
    """Wraps a binary stream; raises IntegrityError at EOF if the bytes were not ``digest``.

    Once a mismatch is found, every further read raises it again, so a caller that retries or
    keeps reading never mistakes the damaged bytes for good ones."""

    def __init__(self, raw: Readable, digest: str, where: str) -> None:
        self._raw = raw
        self._digest = digest
        self._where = where
        self._hash = hashlib.sha256()
        self._checked = False
        self._failed: IntegrityError | None = None

    def read(self, size: int = -1) -> bytes:
        if self._failed is not None:
            raise self._failed
        if size == 0:
            return b""  # not EOF: nothing was asked for
        data = self._raw.read(size)
        if data:
            self._hash.update(data)
        elif not self._checked:
            self._checked = True
            if self._hash.hexdigest() != self._digest:
                self._failed = IntegrityError(
                    f"artifact {self._where} does not match its digest {self._digest[:12]}…",
                    hint="the stored bytes were changed or damaged; delete the blob, then log the "
                    "original file again",
                )
                raise self._failed
        return data

    def close(self) -> None:
        self._raw.close()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


class ArtifactStore(ABC):
    """Content-addressed blob storage; see the module docstring for the guarantees."""

    root: str

    @abstractmethod
    def put_file(self, local_path: Path) -> Blob:
        """Store a local file's bytes; returns its digest and size."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> Blob:
        """Store bytes; returns their digest and size."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a complete blob with this digest is stored."""

    @abstractmethod
    @contextmanager
    def open(self, digest: str) -> Iterator[VerifyingReader]:
        """A reader over the blob that verifies the digest when it reaches the end.
        Raises NotFound."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob (callers make sure nothing references it). Missing is a no-op."""

    def get_bytes(self, digest: str) -> bytes:
        """The whole blob, verified."""
        with self.open(digest) as reader:
            data = reader.read()
            reader.read()  # EOF: triggers the digest check
        return data

    def download(self, digest: str, destination: Path) -> Path:
        """Write the blob to ``destination`` atomically, verified before it appears there."""
        tmp = destination.with_name(f".{destination.name}.triptych-part")
        with self.open(digest) as reader:  # a bad digest or missing blob creates nothing
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as out:
                    for chunk in reader:
                        out.write(chunk)
                tmp.replace(destination)
            finally:
                tmp.unlink(missing_ok=True)
        return destination
