"""``triptych server``: the team server, and its users and tokens (logic in triptych.server).

``create-admin``, ``user`` and ``token`` run against the server's database directly
(``--store``, default the resolved tracking URI), as an operator with access to it does: the
users of a server are never managed through a client's tracking URI.
"""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(invoke_without_command=True)  # the callback's docstring is its help
user_app = typer.Typer(help="Users of a server started with --auth, and their roles.")
token_app = typer.Typer(help="API tokens of the users of a server started with --auth.")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

_STORE = typer.Option(
    None, "--store", help="The server's database URL (default: the resolved tracking URI)."
)
_PROJECT = typer.Option(
    "*", "--project", help="An experiment name, or * for every project (default)."
)
_JSON = typer.Option(False, "--json", help="Print JSON.")


@app.callback()
def server(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (default: this machine only)."
    ),
    port: int = typer.Option(5000, "--port", "-p", help="Port to listen on."),
    store: str = typer.Option(
        None, "--store", help="Metadata store URL (default: the resolved tracking URI)."
    ),
    artifacts: str = typer.Option(
        None, "--artifacts", help="Artifact store root (default: the resolved artifact URI)."
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes."),
    auth: bool = typer.Option(
        False, "--auth", help="Require API tokens: users, roles per project (viewer/editor/admin)."
    ),
    allowed_host: list[str] = typer.Option(
        None,
        "--allowed-host",
        help="Host header to answer (repeat; * for any). Default: the bind address, localhost.",
    ),
    unsafe_no_auth: bool = typer.Option(
        False,
        "--unsafe-no-auth",
        help="Listen on a non-loopback address without --auth (anyone who reaches it can "
        "read and change everything).",
    ),
    max_body: int = typer.Option(
        64 * 1024 * 1024,
        "--max-body-size",
        help="Largest JSON request in bytes (artifact uploads stream and are not limited).",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log each request."),
) -> None:
    """Run the team server: the store's REST API and artifact bytes under /api/v1, OpenAPI
    at /docs, /health. Point clients at it with TRIPTYCH_TRACKING_URI=http://HOST:PORT (and
    TRIPTYCH_ARTIFACT_URI=http://HOST:PORT for artifacts; TRIPTYCH_TRACKING_TOKEN with --auth).
    Its users and tokens: create-admin, user, token."""
    if ctx.invoked_subcommand is not None:
        return
    from triptych import config
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.server.process import is_loopback, serve
    from triptych.server.settings import ServerSettings
    from triptych.uris import redact

    if not is_loopback(host) and not auth and not unsafe_no_auth:
        raise InvalidInput(
            f"refusing to listen on {host} without authentication: anyone who can reach it "
            "could read and change everything",
            hint="add --auth (users and API tokens), keep the default 127.0.0.1, or pass "
            "--unsafe-no-auth on a trusted network",
        )
    resolved = config.resolve()
    settings = ServerSettings(
        store=store or resolved.tracking_uri,
        artifacts=artifacts or resolved.artifact_uri,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        max_body=max_body,
        auth=auth,
        allowed_hosts=tuple(allowed_host or ()),
    )
    console = output.console(stderr=True)
    admins = _admins(settings.store) if auth else None

    def ready() -> None:
        where = f"http://{host}:{port}"
        mode = "auth on" if auth else "auth off"
        console.print(
            f"triptych server on [bold]{where}[/] · store {output.escape(redact(settings.store))}"
            f" · {workers} worker{'s' if workers > 1 else ''} · {mode}"
        )
        console.print(f"  API {where}/api/v1 · docs {where}/docs · Ctrl-C to stop")
        console.print(f"  clients: TRIPTYCH_TRACKING_URI={where}")
        if admins == 0:
            console.print(
                "  [yellow]no admin yet[/]: create one with "
                f"triptych server create-admin NAME --store {output.escape(redact(settings.store))}"
            )

    serve(settings, on_ready=ready)


def _open(store: str | None) -> Any:
    """The server's own database as an AuthStore (an http:// tracking URI is refused)."""
    from triptych import config
    from triptych.server.accounts import auth_store
    from triptych.store import open_store

    opened = open_store(store or config.resolve().tracking_uri)
    try:
        return auth_store(opened)
    except BaseException:
        opened.close()
        raise


def _admins(url: str) -> int:
    opened = _open(url)
    try:
        return int(opened.count_admins())
    finally:
        opened.close()


def _print_secret(secret: str, user: str) -> None:
    from triptych.cli import output

    typer.echo(secret)  # stdout, alone on its line: `TOKEN=$(triptych server token create …)`
    output.console(stderr=True).print(
        f"the API token of {output.escape(user)}, shown this once (only its hash is stored): "
        "clients set TRIPTYCH_TRACKING_TOKEN to it"
    )


@app.command("create-admin")
def create_admin(
    name: str = typer.Argument(..., help="User name of the admin."),
    store: str = _STORE,
) -> None:
    """Create an admin of every project and print its first API token, once. No user exists
    until this runs: a server with --auth has no default user and no default password."""
    from triptych.server import accounts

    opened = _open(store)
    try:
        issued = accounts.create_admin(opened, name)
    finally:
        opened.close()
    _print_secret(issued.secret, name)


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option(None, "--role", help="viewer, editor or admin (default: none)."),
    project: str = _PROJECT,
    store: str = _STORE,
) -> None:
    """Create a user, optionally with a role; give it a token with `triptych server token
    create NAME`."""
    from triptych.server import accounts

    opened = _open(store)
    try:
        made = accounts.add_user(opened, name, role, project, actor="cli")
    finally:
        opened.close()
    typer.echo(f"user {made.name} created{_roles(made)}")


@user_app.command("grant")
def user_grant(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Argument(..., help="viewer, editor or admin."),
    project: str = _PROJECT,
    store: str = _STORE,
) -> None:
    """Give a user a role on a project (replacing the role it had there)."""
    opened = _open(store)
    try:
        user = opened.grant_role(name, role, project)
    finally:
        opened.close()
    typer.echo(f"{user.name}{_roles(user)}")


@user_app.command("revoke")
def user_revoke(
    name: str = typer.Argument(..., help="User name."),
    project: str = _PROJECT,
    store: str = _STORE,
) -> None:
    """Take away a user's role on a project."""
    opened = _open(store)
    try:
        user = opened.revoke_role(name, project)
    finally:
        opened.close()
    typer.echo(f"{user.name}{_roles(user) or ': no roles'}")


@user_app.command("list")
def user_list(store: str = _STORE, as_json: bool = _JSON) -> None:
    """Users and their roles per project."""
    from dataclasses import asdict

    from triptych.cli import output

    opened = _open(store)
    try:
        users = opened.list_users()
    finally:
        opened.close()
    if as_json:
        output.print_json([asdict(u) for u in users])
        return
    for user in users:
        typer.echo(f"{user.name}{_roles(user) or ': no roles'}")


def _roles(user: Any) -> str:
    return "".join(f" · {g.role} on {g.project}" for g in user.grants)


@token_app.command("create")
def token_create(
    user: str = typer.Argument(..., help="Whose token."),
    label: str = typer.Option(None, "--label", help="What the token is for (e.g. ci, laptop)."),
    expires_days: float = typer.Option(
        None, "--expires-days", help="Days until it expires (default: never)."
    ),
    store: str = _STORE,
) -> None:
    """Create an API token for a user and print it, once."""
    from triptych.server import accounts

    opened = _open(store)
    try:
        issued = accounts.issue_token(
            opened, user, label=label, expires_days=expires_days, actor="cli"
        )
    finally:
        opened.close()
    _print_secret(issued.secret, user)


@token_app.command("list")
def token_list(
    user: str = typer.Option(None, "--user", help="Only this user's tokens."),
    store: str = _STORE,
    as_json: bool = _JSON,
) -> None:
    """Tokens by id (never their secrets): owner, label, created, expiry, revocation."""
    from dataclasses import asdict

    from triptych.cli import output
    from triptych.store.base import now_ms

    opened = _open(store)
    try:
        tokens = opened.list_tokens(user)
    finally:
        opened.close()
    if as_json:
        output.print_json([asdict(t) for t in tokens])
        return
    at = now_ms()
    for t in tokens:
        state = "active" if t.active(at) else ("revoked" if t.revoked_at else "expired")
        expiry = f" · expires {output.when(t.expires_at)}" if t.expires_at else ""
        typer.echo(
            f"{t.id} · {t.user} · {state} · {t.label or '-'} · created "
            f"{output.when(t.created_at)}{expiry}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (tpt_<id>_…; see token list)."),
    store: str = _STORE,
) -> None:
    """Revoke a token: the next request that carries it is refused, in every worker."""
    opened = _open(store)
    try:
        token = opened.revoke_token(_token_id(token_id))
    finally:
        opened.close()
    typer.echo(f"token {token.id} of {token.user} revoked")


def _token_id(text: str) -> str:
    """An id, also taken from a whole token (``tpt_<id>_…``) so a leaked one is easy to revoke."""
    text = text.strip()
    if text.startswith("tpt_") and len(text) >= 16:
        return text[4:16]
    return text
