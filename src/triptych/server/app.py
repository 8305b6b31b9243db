"""The team server's app, built by :func:`create_app`: no module-level state.

The stores live on ``app.state`` (``store``, ``artifacts``, ``policy``, ``settings``), so each
test, worker or embedding program builds its own app. The routes are thin: they read
arguments, call the store, and map errors through the one table in ``triptych.errors``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from triptych.server import errors, openapi, ui
from triptych.server import mlflow as mlflow_api
from triptych.server.csrf import check_ui_routes
from triptych.server.paths import EncodedSlashes
from triptych.server.permissions import OpenPolicy, Policy, check_routes
from triptych.server.routes import admin, blobs, docs, health, session, uploads
from triptych.server.routes import store as store_routes
from triptych.server.settings import ServerSettings

if TYPE_CHECKING:
    from triptych.artifacts.base import ArtifactStore
    from triptych.store.base import MetadataStore

log = logging.getLogger(__name__)


def create_app(
    store: MetadataStore | str,
    artifacts: ArtifactStore | str | None = None,
    *,
    settings: ServerSettings | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """The server for ``store`` (an open store or a database URL) and ``artifacts``.

    A store given as a URL is opened here and closed when the app shuts down; a store object
    stays the caller's. Raises InvalidInput for an ``http(s)://`` store (a server in front of
    itself) and UndeclaredRoute if any route lacks a permission decision."""
    from triptych import __version__

    owned = isinstance(store, str)
    url = store if isinstance(store, str) else store.url
    settings = replace(settings, store=url) if settings else ServerSettings(store=url)
    settings.check()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            app.state.store.close()

    app = FastAPI(
        title=settings.title,
        version=__version__,
        description="The team server of triptych: the metadata store contract over HTTP.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by routes.docs, which declares its permission
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = _open_store(store)
    app.state.artifacts = _open_artifacts(artifacts)
    app.state.policy = policy or _policy(settings, app.state.store)
    errors.install(app)
    health.add_routes(app)
    docs.add_routes(app)
    store_routes.add_routes(app)
    blobs.add_routes(app)
    uploads.add_routes(app)  # resumable uploads of large blobs
    mlflow_api.add_routes(app)  # MLflow's client tracks here too (docs/mlflow.md)
    if settings.auth:
        admin.add_routes(app)
        session.add_routes(app)
    ui.add_routes(app)
    openapi.install(app)
    app.add_middleware(EncodedSlashes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.hosts())
    check_routes(app)
    check_ui_routes(app)
    return app


def _policy(settings: ServerSettings, store: MetadataStore) -> Policy:
    if not settings.auth:
        return OpenPolicy()
    from triptych.server.accounts import auth_store
    from triptych.server.auth import TokenPolicy

    auth_store(store)  # users and tokens live in the server's own database
    return TokenPolicy()


def _open_store(store: MetadataStore | str) -> MetadataStore:
    if not isinstance(store, str):
        return store
    from triptych._lazy import load_object, require
    from triptych.uris import metadata_backend

    backend = metadata_backend(store)
    if backend.module:
        require(backend.module, backend.extra or "")
    cls = load_object(backend.target)
    return cls(store)  # type: ignore[operator]


def _open_artifacts(artifacts: ArtifactStore | str | None) -> ArtifactStore | None:
    if artifacts is None or not isinstance(artifacts, str):
        return artifacts
    from triptych.artifacts import open_artifact_store

    return open_artifact_store(artifacts)


def app_from_env() -> FastAPI:
    """The app of one worker process (uvicorn's factory), from ``TRIPTYCH_SERVER_SETTINGS``."""
    settings = ServerSettings.from_env()
    return create_app(settings.store, settings.artifacts, settings=settings)
