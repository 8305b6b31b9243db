"""``triptych server``: the team server (logic in triptych.server)."""

from __future__ import annotations

import typer


def server(
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
    unsafe_no_auth: bool = typer.Option(
        False,
        "--unsafe-no-auth",
        help="Listen on a non-loopback address although authentication is not built yet.",
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
    TRIPTYCH_ARTIFACT_URI=http://HOST:PORT for artifacts)."""
    from triptych import config
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.server.process import is_loopback, serve
    from triptych.server.settings import ServerSettings
    from triptych.uris import redact

    if not is_loopback(host) and not unsafe_no_auth:
        raise InvalidInput(
            f"refusing to listen on {host}: the server has no authentication yet, so anyone "
            "who can reach it could read and change everything",
            hint="keep the default 127.0.0.1, or pass --unsafe-no-auth on a trusted network",
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
    )
    console = output.console(stderr=True)

    def ready() -> None:
        where = f"http://{host}:{port}"
        console.print(
            f"triptych server on [bold]{where}[/] · store {output.escape(redact(settings.store))}"
            f" · {workers} worker{'s' if workers > 1 else ''}"
        )
        console.print(f"  API {where}/api/v1 · docs {where}/docs · Ctrl-C to stop")
        console.print(f"  clients: TRIPTYCH_TRACKING_URI={where}")

    serve(settings, on_ready=ready)
