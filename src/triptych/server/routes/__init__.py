"""The server's routes, one module per kind: ``store`` (the metadata store contract under
``/api/v1``), ``blobs`` and ``uploads`` (artifact bytes), ``health``, ``docs``, ``admin`` and
``session``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.responses import Response


def add_verbs(
    app: Any,
    path: str,
    verbs: Iterable[tuple[str, Callable[..., Any], Any]],
    *,
    name: str,
    tag: str,
    what: str,
) -> None:
    """Register ``(verb, endpoint, permission)`` triples on one raw-bytes ``path``: each route
    named ``<name>_<verb>`` and declaring its permission (see ``permissions.requires``)."""
    from triptych.server.permissions import requires

    for verb, endpoint, permission in verbs:
        app.add_api_route(
            path,
            endpoint,
            methods=[verb],
            name=f"{name}_{verb.lower()}",
            tags=[tag],
            summary=f"{verb} {what}",
            dependencies=[requires(permission)],
            response_class=Response,
        )
