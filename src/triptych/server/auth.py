"""The policy of ``triptych server --auth``: API tokens, roles per project, one decision table.

A request says who it is with ``Authorization: Bearer <token>``; UI pages (``/`` and
``/ui/…``) also accept the HttpOnly session cookie set by ``/ui/login``, nothing else does.
No credentials, or a token that is malformed, unknown, revoked or expired, is 401 with
``WWW-Authenticate: Bearer``; a known user whose roles do not allow the route is 403.

Every request reads its token from the store (``AuthStore.authenticate``): there is no cache,
so a revocation applies to the very next request, in every worker.

Roles per project (see ``docs/server.md``): a grant on ``*`` applies to every route; a grant
on an experiment applies to the routes whose subject is that experiment, known from the path
(``{experiment_id}``, or ``{run_id}`` through the run's experiment) or whose arguments do
(creating an experiment or a run, searching runs, heartbeats, finding an experiment by name:
:data:`BODY_SUBJECTS`, checked by the store routes once the arguments are read, see
:meth:`TokenPolicy.check_call`); listing experiments answers the user's projects only
(:data:`RESULT_FILTERS`). Every other route (datasets, lineage, models, schedules,
deployments, monitors, blobs, the UI) needs the role on ``*``; admin routes need admin on
``*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import is_dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from triptych.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from triptych.server import paths
from triptych.server.accounts import parse_token
from triptych.store.auth import ALL_PROJECTS, User
from triptych.store.http.routes import Permission

if TYPE_CHECKING:
    from triptych.store.auth import AuthStore

log = logging.getLogger(__name__)

# The one decision table: what each role may do. A role or permission not named here allows
# nothing (fail closed), so a role stored by a newer triptych, or a typo, grants no access.
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.READ}),
    "editor": frozenset({Permission.READ, Permission.WRITE}),
    "admin": frozenset({Permission.READ, Permission.WRITE, Permission.ADMIN}),
}

SESSION_COOKIE = "triptych_session"
_LOGIN_HINT = (
    "send Authorization: Bearer <token> (the Python client and CLI: set "
    "TRIPTYCH_TRACKING_TOKEN; a browser: sign in at /ui/login)"
)


def allows(role: str | None, permission: Permission) -> bool:
    """Whether ``role`` may use a route that needs ``permission``."""
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())


def is_ui_path(path: str) -> bool:
    """The pages the session cookie is accepted on."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def credentials(request: Request) -> str | None:
    """The token the request carries, or None."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated(
                "only Authorization: Bearer <token> is accepted", hint=_LOGIN_HINT
            )
        return value.strip()
    if is_ui_path(request.url.path):
        return request.cookies.get(SESSION_COOKIE)
    return None


def user_of(store: AuthStore, token: str | None) -> User | None:
    """The user ``token`` belongs to while it is valid, else None."""
    parsed = parse_token(token) if token else None
    if parsed is None:
        return None
    return store.authenticate(*parsed)


class TokenPolicy:
    """Users, API tokens and roles from the app's store (which must be an AuthStore)."""

    def authorize(self, request: Request, permission: Permission) -> None:
        store = request.app.state.store
        token = credentials(request)
        if token is None:
            raise Unauthenticated("authentication required", hint=_LOGIN_HINT)
        user = user_of(store, token)
        if user is None:
            raise Unauthenticated(
                "the token is not valid: unknown, revoked or expired",
                hint="ask an admin for a new one (triptych server token create NAME)",
            )
        request.state.user = user.name
        request.state.principal = user
        if allows(user.role_on(ALL_PROJECTS), permission):
            return
        project = None
        if permission is not Permission.ADMIN and any(
            g.project != ALL_PROJECTS for g in user.grants
        ):
            if _shared(request) and any(allows(g.role, permission) for g in user.grants):
                return  # content-addressed records every project's runs need
            if _deferrable(request):  # decided by check_call once the arguments are read
                request.state.deferred = (user, permission)
                return
            project = subject_project(request)
            if project is not None and allows(user.role_on(project), permission):
                return
        where = f" on project {project!r}" if project else " on every project (*)"
        raise PermissionDenied(
            f"user {user.name!r} needs {permission.value} access{where}",
            hint=f"an admin can grant it: triptych server user grant {user.name} "
            f"{_least_role(permission)}{'' if project is None else f' --project {project}'}",
        )

    def check_call(self, request: Request, method: str, arguments: dict[str, Any]) -> None:
        """The second half of a decision :meth:`authorize` deferred for a route whose subject
        travels in its arguments: every experiment they name must allow the permission."""
        deferred = getattr(request.state, "deferred", None)
        if deferred is None:
            return
        user, permission = deferred
        if method in RESULT_FILTERS:
            return  # the answer is filtered to the user's projects (filter_result)
        subjects = BODY_SUBJECTS.get(method)
        try:
            projects = subjects(request.app.state.store, arguments) if subjects else []
        except (NotFound, InvalidInput, AttributeError, KeyError, TypeError):
            projects = []  # unknown subjects: refused, and nothing is said about them
        refused = [p for p in projects if not allows(user.role_on(p), permission)]
        if not projects or refused:
            where = f"project {refused[0]!r}" if refused else "every project (*)"
            raise PermissionDenied(
                f"user {user.name!r} needs {permission.value} access on {where}",
                hint=f"an admin can grant it: triptych server user grant {user.name} "
                f"{_least_role(permission)}" + (f" --project {refused[0]}" if refused else ""),
            )

    def filter_result(self, request: Request, method: str, result: Any) -> Any:
        """A deferred list answer (:data:`RESULT_FILTERS`) keeps the user's projects only;
        any other answer was decided by :meth:`check_call` before the call and passes."""
        deferred = getattr(request.state, "deferred", None)
        keep = RESULT_FILTERS.get(method)
        if deferred is None or keep is None:
            return result
        user, permission = deferred
        return [item for item in result if allows(user.role_on(keep(item)), permission)]

    def identity(self, request: Request, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments with who acts set to the authenticated user, unless it is an admin
        of ``*`` (who may act for others: a loop or CI account recording its own name).
        So an editor cannot write another name into an audit trail or approve its own alias
        request by calling itself someone else."""
        user = getattr(request.state, "principal", None)
        if user is None or user.role_on(ALL_PROJECTS) == "admin":
            return arguments
        changed = dict(arguments)
        for key in IDENTITY_ARGUMENTS:
            if key in changed or _takes(request, key):
                changed[key] = user.name
        spec = changed.get("spec")
        if is_dataclass(spec) and not isinstance(spec, type) and hasattr(spec, "user"):
            changed["spec"] = replace(spec, user=user.name)
        return changed


# Arguments of store methods that name who acts (the registry's and deployments' trails).
IDENTITY_ARGUMENTS = ("user", "actor")


def _takes(request: Request, key: str) -> bool:
    from triptych.store.http.routes import BY_METHOD

    name, module = _route(request)
    endpoint = BY_METHOD.get(name) if module == _STORE_ROUTES else None
    return endpoint is not None and key in endpoint.signature.parameters


def _route(request: Request) -> tuple[str, str]:
    """The route's name and the module of its handler (which says what kind of route it is)."""
    route = request.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    return str(getattr(route, "name", "")), str(getattr(endpoint, "__module__", ""))


def _deferrable(request: Request) -> bool:
    """Whether the route is a store route of :data:`BODY_SUBJECTS` or :data:`RESULT_FILTERS`
    (whose handler always calls ``check_call`` and ``filter_result``); any other route,
    whatever its name, is decided here and now."""
    name, module = _route(request)
    return module == _STORE_ROUTES and (name in BODY_SUBJECTS or name in RESULT_FILTERS)


def _shared(request: Request) -> bool:
    """Whether the route reads or adds a content-addressed record no experiment owns."""
    return _route(request) in SHARED


_STORE_ROUTES = "triptych.server.routes.store"

# Environments and artifact blobs are named by their content: a user who may read or write in
# some project may read or add them (runs of its projects need them), not delete them.
SHARED = {
    ("put_environment", _STORE_ROUTES),
    ("get_environment", _STORE_ROUTES),
    ("blob_head", "triptych.server.routes.blobs"),
    ("blob_get", "triptych.server.routes.blobs"),
    ("blob_put", "triptych.server.routes.blobs"),
}


def _experiment_names(store: Any, ids: Any) -> list[str]:
    return [str(store.get_experiment(str(i)).name) for i in ids]


def _run_projects(store: Any, run_ids: Any) -> list[str]:
    return _experiment_names(store, {store.get_run(str(r)).experiment_id for r in run_ids})


# Store methods whose experiment travels in the body: how to find the projects they touch.
BODY_SUBJECTS: dict[str, Callable[[Any, dict[str, Any]], list[str]]] = {
    "create_experiment": lambda store, a: [str(a["name"])],
    "create_run": lambda store, a: _experiment_names(store, [a["spec"].experiment_id]),
    "search_runs": lambda store, a: _experiment_names(store, a["experiment_ids"]),
    "heartbeat": lambda store, a: _run_projects(store, a["run_ids"]),
    "get_experiment_by_name": lambda store, a: [str(a["name"])],
}

# Store methods whose answer is a list a project-scoped user sees part of: each entry's project.
RESULT_FILTERS: dict[str, Callable[[Any], str]] = {
    "list_experiments": lambda experiment: str(experiment.name),
}


def _least_role(permission: Permission) -> str:
    for role, allowed in ROLE_PERMISSIONS.items():
        if permission in allowed:
            return role
    return "admin"  # pragma: no cover - every permission but public is in the table


def subject_project(request: Request) -> str | None:
    """The experiment (by name) the route acts on, when its path names one; else None."""
    store = request.app.state.store
    params = request.path_params
    try:
        if "experiment_id" in params:
            experiment_id = paths.argument(request.scope, params["experiment_id"])
            return str(store.get_experiment(experiment_id).name)
        if "run_id" in params:
            run = store.get_run(paths.argument(request.scope, params["run_id"]))
            return str(store.get_experiment(run.experiment_id).name)
    except (NotFound, InvalidInput):
        return None  # a scoped user learns nothing about what does not exist
    return None
