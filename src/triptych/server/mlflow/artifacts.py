"""The ``mlflow-artifacts`` proxy: MLflow's client uploads, lists and downloads a run's files
at ``/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>``.

The bytes become ordinary triptych artifacts: stored content-addressed in the server's
artifact store, and recorded in the run's artifact tree at ``<path>``, so triptych's client
and UI see them like any other."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from triptych.artifacts import paths
from triptych.artifacts.base import CHUNK
from triptych.errors import InvalidInput, NotFound, StoreUnavailable, TriptychError
from triptych.server.mlflow.routing import error_response, json_response
from triptych.server.permissions import Permission, requires
from triptych.store.entities import ArtifactEntry

PREFIX = "/api/2.0/mlflow-artifacts/artifacts"


def locate(path: str) -> tuple[str | None, str]:
    """``(run_id, path inside the run)`` of ``<experiment>/<run>/artifacts/<path>``; the run
    is None for a path above a run's files (an experiment, or a run's folder)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 3 or parts[2] != "artifacts":
        if len(parts) <= 2:
            return None, "/".join(parts)
        raise NotFound(f"no artifacts at {path!r}", hint="expected <experiment>/<run>/artifacts/…")
    rest = "/".join(parts[3:])
    return parts[1], paths.normalise(rest, allow_empty=True) if rest else ""


def _artifacts(state: Any) -> Any:
    if state.artifacts is None:
        raise StoreUnavailable(
            "this server has no artifact store", hint="start it with --artifacts"
        )
    return state.artifacts


async def upload(request: Request, path: str) -> Response:
    """Store the body as the run's file at ``path``."""
    fd, name = tempfile.mkstemp(prefix="triptych-mlflow-", suffix=".part")
    tmp = Path(name)
    try:
        state = request.app.state
        run_id, inside = locate(path)
        if run_id is None or not inside:
            raise InvalidInput(f"cannot upload to {path!r}: name a file inside a run")
        await run_in_threadpool(state.store.get_run, run_id)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                await run_in_threadpool(out.write, chunk)

        def store() -> None:
            blob = _artifacts(state).put_file(tmp)
            state.store.record_artifacts(run_id, [ArtifactEntry(inside, blob.digest, blob.size)])

        await run_in_threadpool(store)
    except TriptychError as e:
        return error_response(e)
    finally:
        tmp.unlink(missing_ok=True)
    return json_response(200, {})


async def download(request: Request, path: str) -> Response:
    """The bytes of the run's file at ``path``, streamed."""
    state = request.app.state
    try:
        run_id, inside = locate(path)
        if run_id is None or not inside:
            raise NotFound(f"no file at {path!r}")
        entry = await run_in_threadpool(state.store.get_artifact, run_id, inside)
        opened = _artifacts(state).open(entry.digest)
        reader = await run_in_threadpool(opened.__enter__)
    except TriptychError as e:
        return error_response(e)

    def chunks() -> Iterator[bytes]:
        try:
            while data := reader.read(CHUNK):
                yield data
        finally:
            opened.__exit__(None, None, None)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(chunks()):
            yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream")


async def listing(request: Request) -> Response:
    """``?path=<experiment>/<run>/artifacts/<folder>``: the folder's direct children."""
    state = request.app.state
    try:
        run_id, inside = locate(request.query_params.get("path", ""))
        if run_id is None:  # above a run's files: only a run's own folder has one child
            depth = len([p for p in inside.split("/") if p])
            files = [{"path": "artifacts", "is_dir": True}] if depth == 2 else []
            return json_response(200, {"files": files})
        entries = await run_in_threadpool(state.store.list_artifacts, run_id, inside)
    except TriptychError as e:
        return error_response(e)
    files = []
    for entry in entries:
        item: dict[str, Any] = {"path": entry.path.rsplit("/", 1)[-1], "is_dir": entry.is_dir}
        if not entry.is_dir and entry.size is not None:
            item["file_size"] = entry.size
        files.append(item)
    return json_response(200, {"files": files})


def add_routes(api: FastAPI | APIRouter) -> None:
    api.add_api_route(
        PREFIX,
        listing,
        methods=["GET"],
        dependencies=[requires(Permission.READ)],
        name="mlflow-artifacts list",
        tags=["mlflow"],
        include_in_schema=False,
    )
    api.add_api_route(
        PREFIX + "/{path:path}",
        download,
        methods=["GET"],
        dependencies=[requires(Permission.READ)],
        name="mlflow-artifacts get",
        tags=["mlflow"],
        include_in_schema=False,
    )
    api.add_api_route(
        PREFIX + "/{path:path}",
        upload,
        methods=["PUT"],
        dependencies=[requires(Permission.WRITE)],
        name="mlflow-artifacts put",
        tags=["mlflow"],
        include_in_schema=False,
    )
