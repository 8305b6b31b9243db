"""Authorization that fails closed: every route declares the permission it needs.

A route declares its permission with ``dependencies=[requires(Permission.READ)]``. The app
factory refuses to build an app with a route that declares none (:func:`check_routes`), and the
route-coverage test enumerates every route too, so a new route cannot be reachable by accident.

Who may do what is the app's :class:`Policy` (``app.state.policy``). Without ``--auth`` it is
:class:`OpenPolicy`: everything is allowed, which is why the server binds 127.0.0.1 by
default. With ``--auth`` it is ``triptych.server.auth.TokenPolicy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Depends, Request

from triptych.errors import TriptychError
from triptych.store.http.routes import Permission

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.routing import BaseRoute

__all__ = ["Authorize", "OpenPolicy", "Permission", "Policy", "check_routes", "requires"]


class Policy(Protocol):
    """Decides whether a request may use a route that needs ``permission``."""

    def authorize(self, request: Request, permission: Permission) -> None:
        """Return to allow; raise PermissionDenied (403) or Unauthenticated (401) to refuse.

        A policy may also have ``check_call(request, method, arguments)``, which the store
        routes call with the decoded arguments before the store method runs (the token
        policy decides project grants whose experiment travels in the body there)."""


class OpenPolicy:
    """No authentication: every request may do everything (local use, bound to loopback)."""

    def authorize(self, request: Request, permission: Permission) -> None:
        return None


class Authorize:
    """The dependency a route declares its permission with; asks the app's policy."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request) -> None:
        if self.permission is Permission.PUBLIC:
            return
        request.app.state.policy.authorize(request, self.permission)

    def __repr__(self) -> str:
        return f"Authorize({self.permission.value})"


def requires(permission: Permission) -> Any:
    """``dependencies=[requires(Permission.WRITE)]``: the one way a route declares its need."""
    return Depends(Authorize(permission))


def permission_of(route: BaseRoute) -> Permission | None:
    """The permission ``route`` declared, or None when it declared none (or several)."""
    from fastapi.routing import APIRoute

    if not isinstance(route, APIRoute):
        return None
    found = [
        d.call.permission for d in route.dependant.dependencies if isinstance(d.call, Authorize)
    ]
    return found[0] if len(found) == 1 else None


class UndeclaredRoute(TriptychError):
    """A route of the server declares no permission (a programming error, caught at start)."""


def check_routes(app: FastAPI) -> None:
    """Refuse an app with any route that lacks exactly one permission decision."""
    missing = [
        getattr(route, "path", repr(route)) for route in app.routes if permission_of(route) is None
    ]
    if missing:
        raise UndeclaredRoute(
            f"routes without a permission decision: {', '.join(missing)}",
            hint="declare one with dependencies=[requires(Permission.…)]",
        )
