"""Artifact bytes under ``/api/v1/blobs/{digest}``: the artifact store contract over HTTP.

Blobs are content-addressed, so every operation is idempotent: ``PUT`` streams the body to a
temporary file while hashing it and stores it only when its sha256 is the digest in the path;
``GET`` streams the blob, from an offset with ``Range: bytes=N-`` (how the client resumes a
broken download); ``HEAD`` says whether it is stored. Nothing is held in memory whole.

The server does not vouch for the bytes it sends: if the stored blob was damaged, it still
sends what it has, and the client's own digest check refuses it (``IntegrityError``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from triptych.artifacts.base import CHUNK, check_digest
from triptych.errors import IntegrityError, InvalidInput, StoreUnavailable
from triptych.server.permissions import Permission
from triptych.store.http.codec import dumps

log = logging.getLogger(__name__)
PATH = "/api/v1/blobs/{digest}"
_RANGE = re.compile(r"^bytes=([0-9]{1,18})-$")


def _artifacts(request: Request) -> Any:
    store = request.app.state.artifacts
    if store is None:
        raise StoreUnavailable(
            "this server has no artifact store", hint="start it with --artifacts URL"
        )
    return store


async def head(request: Request, digest: str) -> Response:
    """200 when the blob is stored, 404 when not (no body either way)."""
    check_digest(digest)
    found = await run_in_threadpool(_artifacts(request).exists, digest)
    return Response(status_code=200 if found else 404)


async def get(request: Request, digest: str) -> StreamingResponse:
    """The blob's bytes, streamed; ``Range: bytes=N-`` starts at byte N (206)."""
    check_digest(digest)
    offset = 0
    wanted = request.headers.get("range")
    if wanted:
        match = _RANGE.match(wanted.strip())
        if match is None:
            raise InvalidInput(f"unsupported range {wanted!r}", hint="use bytes=N-")
        offset = int(match.group(1))
    store = _artifacts(request)
    opened = store.open(digest)
    reader = await run_in_threadpool(opened.__enter__)  # NotFound before any header is sent

    def chunks() -> Iterator[bytes]:
        skipped = 0
        try:
            while True:
                try:
                    data = reader.read(CHUNK)
                except IntegrityError as e:  # the client checks the digest itself
                    log.warning("sent a damaged blob: %s", e)
                    return
                if not data:
                    return
                if skipped < offset:
                    cut = min(len(data), offset - skipped)
                    skipped += cut
                    data = data[cut:]
                    if not data:
                        continue
                yield data
        finally:
            opened.__exit__(None, None, None)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(chunks()):
            yield chunk

    headers = {"accept-ranges": "bytes"}
    status = 200
    if offset:
        status = 206
        headers["content-range"] = f"bytes {offset}-*/*"
    return StreamingResponse(
        body(), status_code=status, media_type="application/octet-stream", headers=headers
    )


async def put(request: Request, digest: str) -> Response:
    """Store the body as blob ``digest``; refused unless its sha256 is ``digest``."""
    check_digest(digest)
    store = _artifacts(request)
    fd, name = tempfile.mkstemp(prefix="triptych-upload-", suffix=".part")
    tmp = Path(name)
    try:
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                h.update(chunk)
                size += len(chunk)
                await run_in_threadpool(out.write, chunk)
        if h.hexdigest() != digest:
            raise InvalidInput(
                f"the uploaded bytes have digest {h.hexdigest()[:12]}…, not {digest[:12]}…",
                hint="the file changed or was damaged on the way; upload it again",
            )
        blob = await run_in_threadpool(store.put_file, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return Response(
        dumps({"digest": blob.digest, "size": blob.size}), media_type="application/json"
    )


async def delete(request: Request, digest: str) -> Response:
    """Remove the blob (the caller made sure nothing refers to it); missing is fine."""
    check_digest(digest)
    await run_in_threadpool(_artifacts(request).delete, digest)
    return Response(b"null", media_type="application/json")


def add_routes(app: FastAPI) -> None:
    from triptych.server.routes import add_verbs

    verbs = [
        ("HEAD", head, Permission.READ),
        ("GET", get, Permission.READ),
        ("PUT", put, Permission.WRITE),
        ("DELETE", delete, Permission.WRITE),
    ]
    add_verbs(app, PATH, verbs, name="blob", tag="blobs", what="a blob")
