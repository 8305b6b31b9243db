"""Artifact bytes through the team server (``http(s)://host:5000`` as the artifact root).

The artifact store contract over ``/api/v1/blobs/{digest}`` (see ``triptych.server.routes.
blobs``). An upload is skipped when the server already has the digest, and streamed from the
file otherwise — a file over ``RESUMABLE_AT`` bytes in chunks through ``/api/v1/uploads``, so
a broken connection or a restarted server costs one chunk, not the whole file; a download is
streamed and, if the connection breaks, resumed from the byte it stopped at (``Range``), up to
a few times. Every read is verified against the digest here, on the client, whatever the
server says.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from triptych.artifacts.base import (
    CHUNK,
    ArtifactStore,
    Blob,
    VerifyingReader,
    check_digest,
    digest_bytes,
    digest_file,
)
from triptych.errors import InvalidInput, StoreUnavailable
from triptych.uris import redact

log = logging.getLogger(__name__)
RESUMES = 5  # how many times one download picks up again after a broken connection
RESUMABLE_AT = 16 * CHUNK  # files larger than this upload in resumable chunks
UPLOAD_CHUNK = 8 * CHUNK
UPLOAD_RETRIES = 8  # broken chunks in a row before the upload gives up (backoff up to 5 s)
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class HttpArtifactStore(ArtifactStore):
    """Blobs kept by the triptych server at ``root``. Thread-safe."""

    def __init__(self, root: str, *, token: str | None = None, **_: Any) -> None:
        from triptych.store.http.client import resolve_token

        self.root = root
        self._where = redact(root)
        self._token = resolve_token(token)  # TRIPTYCH_TRACKING_TOKEN unless given
        self._pid = os.getpid()
        self._http = self._connect()

    def _connect(self) -> httpx.Client:
        from triptych import __version__
        from triptych.store.http.client import auth_headers

        return httpx.Client(
            base_url=self.root.rstrip("/"),
            timeout=TIMEOUT,
            transport=httpx.HTTPTransport(retries=2),
            headers={"user-agent": f"triptych/{__version__}", **auth_headers(self._token)},
        )

    def __repr__(self) -> str:
        return f"HttpArtifactStore({self._where!r})"

    def close(self) -> None:
        self._http.close()

    def __del__(self) -> None:  # the contract has no close: the pool goes with the store
        http = getattr(self, "_http", None)
        if http is not None:
            http.close()

    @property
    def client(self) -> httpx.Client:
        if self._pid != os.getpid():  # a forked child must not share its parent's sockets
            self._pid, self._http = os.getpid(), self._connect()
        return self._http

    def _url(self, digest: str) -> str:
        return f"/api/v1/blobs/{check_digest(digest)}"

    # -- writes ------------------------------------------------------------------------------
    def put_file(self, local_path: Path) -> Blob:
        local_path = Path(local_path)
        if not local_path.is_file():
            raise InvalidInput(f"{local_path} is not a file")
        blob = digest_file(local_path)
        if self.exists(blob.digest):
            return blob

        if blob.size > RESUMABLE_AT:
            return self._upload(local_path, blob)

        def body() -> Iterator[bytes]:
            with open(local_path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return self._put(blob, body)

    def _upload_url(self, digest: str) -> str:
        return f"/api/v1/uploads/{check_digest(digest)}"

    def _held(self, blob: Blob) -> int:
        """How many bytes of ``blob``'s upload the server holds (its size when stored)."""
        response = self.client.head(self._upload_url(blob.digest))
        _raise_for(response, self._where)
        if response.headers.get("upload-complete") == "?1":
            return blob.size
        return int(response.headers.get("upload-offset", "0"))

    def _upload(self, local_path: Path, blob: Blob) -> Blob:
        """A large file in chunks of ``UPLOAD_CHUNK``, resumed from what the server holds
        after a broken connection or a restarted server (``/api/v1/uploads``)."""
        failures = 0
        offset: int | None = None
        with open(local_path, "rb") as f:
            while True:
                try:
                    if offset is None:
                        offset = self._held(blob)
                        if offset:
                            log.info(
                                "resuming the upload of %s… at byte %d of %d",
                                blob.digest[:12],
                                offset,
                                blob.size,
                            )
                    if offset >= blob.size and self.exists(blob.digest):
                        return blob
                    f.seek(offset)
                    chunk = f.read(UPLOAD_CHUNK)
                    response = self.client.patch(
                        self._upload_url(blob.digest),
                        content=chunk,
                        headers={
                            "content-type": "application/offset+octet-stream",
                            "upload-offset": str(offset),
                            "upload-length": str(blob.size),
                        },
                    )
                except httpx.TransportError as e:
                    failures += 1
                    if failures > UPLOAD_RETRIES:
                        raise self._unreachable(e) from e
                    time.sleep(min(0.25 * 2**failures, 5.0))
                    offset = None  # ask the server what it holds
                    continue
                if response.status_code == 409:  # it holds another offset: carry on from it
                    offset = int(response.headers.get("upload-offset", "0"))
                    continue
                _raise_for(response, self._where)
                if response.status_code == 201:
                    return blob
                offset = int(response.headers["upload-offset"])
                failures = 0

    def put_bytes(self, data: bytes) -> Blob:
        blob = digest_bytes(data)
        if self.exists(blob.digest):
            return blob
        return self._put(blob, lambda: iter((data,)))

    def _put(self, blob: Blob, body: Any) -> Blob:
        url = self._url(blob.digest)
        for attempt in range(3):  # a content-addressed PUT is idempotent: retry it whole
            try:
                response = self.client.put(
                    url,
                    content=body(),
                    headers={
                        "content-type": "application/octet-stream",
                        "content-length": str(blob.size),
                    },
                )
                break
            except httpx.TransportError as e:
                if attempt == 2:
                    raise self._unreachable(e) from e
        _raise_for(response, self._where)
        return blob

    def delete(self, digest: str) -> None:
        try:
            response = self.client.delete(self._url(digest))
        except httpx.TransportError as e:
            raise self._unreachable(e) from e
        _raise_for(response, self._where)

    # -- reads ---------------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        try:
            response = self.client.head(self._url(digest))
        except httpx.TransportError as e:
            raise self._unreachable(e) from e
        if response.status_code == 404:
            return False
        _raise_for(response, self._where)
        return True

    @contextmanager
    def open(self, digest: str) -> Iterator[VerifyingReader]:
        stream = _ResumingStream(self, digest)
        try:
            stream.start()
            yield VerifyingReader(stream, digest, f"{digest[:12]}… from {self._where}")
        finally:
            stream.close()

    def _unreachable(self, error: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot reach the triptych server at {self._where} for artifacts: {error}",
            hint="start it with `triptych server`, or check TRIPTYCH_ARTIFACT_URI",
        )


class _ResumingStream:
    """A blob's bytes as a readable stream that re-requests from where it was cut off."""

    def __init__(self, store: HttpArtifactStore, digest: str) -> None:
        self._store = store
        self._url = store._url(digest)
        self._received = 0  # bytes that came over the network, returned or buffered
        self._resumes = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] = iter(())
        self._buffer = b""

    def start(self) -> None:
        headers = {"range": f"bytes={self._received}-"} if self._received else {}
        client = self._store.client
        try:
            response = client.send(
                client.build_request("GET", self._url, headers=headers), stream=True
            )
        except httpx.TransportError as e:
            raise self._store._unreachable(e) from e
        if response.status_code >= 400:
            response.read()
            response.close()
            _raise_for(response, self._store._where)
        if self._received and response.status_code != 206:
            response.close()
            raise StoreUnavailable(f"{self._store._where} cannot resume a download")
        self._response = response
        self._chunks = response.iter_raw(CHUNK)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            while chunk := self._next():
                self._buffer += chunk
            data, self._buffer = self._buffer, b""
            return data
        while len(self._buffer) < size and (chunk := self._next()):
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _next(self) -> bytes:
        while True:
            try:
                chunk = next(self._chunks, b"")
            except httpx.TransportError as e:
                if self._resumes >= RESUMES:
                    raise self._store._unreachable(e) from e
                self._resumes += 1
                self.close()
                self.start()  # from byte self._received on
                continue
            self._received += len(chunk)
            return chunk

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


def _raise_for(response: httpx.Response, where: str) -> None:
    if response.status_code < 400:
        return
    from triptych.store.http.client import error_from

    raise error_from(response, f"{response.request.method} {response.request.url.path}", where)
