"""Resumable uploads of large blobs under ``/api/v1/uploads/{digest}``.

A whole-body ``PUT /api/v1/blobs/{digest}`` has to start again after a broken connection; for
large files the client sends chunks instead, each saying where it starts:

* ``HEAD`` answers ``Upload-Offset``: how many bytes of the upload the server holds (0 for
  none; ``Upload-Complete: ?1`` when the blob is stored already);
* ``PATCH`` with ``Upload-Offset: N`` and ``Upload-Length: L`` appends its body when the
  server holds exactly N bytes (else 409 with the offset it holds, so the client can carry on
  from there); when the upload reaches L bytes its sha256 is checked against the digest and
  the blob is stored (201), or the partial upload is dropped (400);
* ``DELETE`` drops a partial upload.

Partial uploads are files in the server's upload folder (private, 0700), so they survive a
restart of the server; one upload of a digest at a time (a file lock, also across workers).
Content addressing makes all of it idempotent: the digest names both the upload and the blob.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from triptych.artifacts.base import CHUNK, check_digest
from triptych.errors import InvalidInput
from triptych.server.permissions import Permission
from triptych.server.routes.blobs import _artifacts
from triptych.store.http.codec import dumps

PATH = "/api/v1/uploads/{digest}"
STALE_S = 24 * 3600  # partial uploads untouched this long are dropped
MAX_LENGTH = 1 << 50


def upload_dir(request: Request) -> Path:
    """The folder of partial uploads: the app's ``upload_dir`` or a private temp folder of
    this user, made once with mode 0700."""
    folder = getattr(request.app.state, "upload_dir", None)
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"triptych-uploads-{os.getuid()}"
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _part(request: Request, digest: str) -> Path:
    return upload_dir(request) / f"{check_digest(digest)}.part"


def _number(request: Request, header: str) -> int:
    text = request.headers.get(header)
    if text is None or not text.isdigit() or int(text) > MAX_LENGTH:
        raise InvalidInput(f"the {header} header must be a whole number of bytes, got {text!r}")
    return int(text)


def _offset(part: Path) -> int:
    return part.stat().st_size if part.exists() else 0


def _drop_stale(folder: Path) -> None:
    cutoff = time.time() - STALE_S
    for old in folder.glob("*.part"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


async def head(request: Request, digest: str) -> Response:
    part = _part(request, digest)
    stored = await run_in_threadpool(_artifacts(request).exists, digest)
    headers = {"upload-offset": str(_offset(part)), "cache-control": "no-store"}
    if stored:
        headers["upload-complete"] = "?1"
    return Response(status_code=200, headers=headers)


async def patch(request: Request, digest: str) -> Response:
    """Append a chunk (see the module docstring)."""
    from filelock import FileLock, Timeout

    check_digest(digest)
    start = _number(request, "upload-offset")
    length = _number(request, "upload-length")
    store = _artifacts(request)
    part = _part(request, digest)
    lock = FileLock(str(part) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _conflict(part, "another upload of this blob is in progress")
    try:
        held = _offset(part)
        if held != start:
            return _conflict(part, f"the server holds {held} bytes of this upload, not {start}")
        size = held
        with part.open("ab") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > length:
                    break
                await run_in_threadpool(out.write, chunk)
        if size > length:
            part.unlink(missing_ok=True)
            raise InvalidInput(f"the upload is longer than its Upload-Length {length}")
        if size < length:
            os.utime(part)
            return Response(status_code=204, headers={"upload-offset": str(size)})
        found = await run_in_threadpool(_sha256, part)
        if found != digest:
            part.unlink(missing_ok=True)
            raise InvalidInput(
                f"the uploaded bytes have digest {found[:12]}…, not {digest[:12]}…",
                hint="the file changed or was damaged on the way; upload it again",
            )
        blob = await run_in_threadpool(store.put_file, part)
        part.unlink(missing_ok=True)
        _drop_stale(part.parent)
    finally:
        lock.release()
        Path(str(part) + ".lock").unlink(missing_ok=True)
    return Response(
        dumps({"digest": blob.digest, "size": blob.size}),
        status_code=201,
        media_type="application/json",
        headers={"upload-offset": str(length), "upload-complete": "?1"},
    )


def _conflict(part: Path, message: str) -> Response:
    body: dict[str, Any] = {"error": "Conflict", "message": message, "hint": "resume from it"}
    return Response(
        dumps(body),
        status_code=409,
        media_type="application/json",
        headers={"upload-offset": str(_offset(part))},
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


async def delete(request: Request, digest: str) -> Response:
    _part(request, digest).unlink(missing_ok=True)
    return Response(b"null", media_type="application/json")


def add_routes(app: FastAPI) -> None:
    from triptych.server.routes import add_verbs

    verbs = [
        ("HEAD", head, Permission.READ),
        ("PATCH", patch, Permission.WRITE),
        ("DELETE", delete, Permission.WRITE),
    ]
    add_verbs(app, PATH, verbs, name="upload", tag="blobs", what="a resumable upload")
