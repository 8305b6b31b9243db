"""``triptych serve``: the scoring server (logic in triptych.serving)."""

from __future__ import annotations

from typing import Any

import typer


def serve(
    model_uri: str = typer.Argument(
        None,
        help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH or deployments:/NAME.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", "-p", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes."),
    deployment: str = typer.Option(
        None, "--deployment", "-d", help="Serve this deployment (same as deployments:/NAME)."
    ),
    poll_interval: float = typer.Option(
        2.0,
        "--poll-interval",
        envvar="TRIPTYCH_SERVE_POLL_INTERVAL",
        help="Seconds between checks for a moved alias or a changed deployment (0: never).",
    ),
    max_body: int = typer.Option(
        10 * 1024 * 1024,
        "--max-body-size",
        envvar="TRIPTYCH_SERVE_MAX_BODY_SIZE",
        help="Largest request body in bytes; bigger ones get 413.",
    ),
    log_predictions: bool = typer.Option(
        True,
        "--log-predictions/--no-log-predictions",
        help="Record every answer in the prediction log of the serving run.",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log each request (slower)."),
) -> None:
    """Serve a model (or a deployment) over HTTP: POST /predict, /health, /ready, /metadata,
    /metrics, /openapi.json. A server on an alias follows it when it moves."""
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.serving.plan import DEPLOYMENTS_SCHEME
    from triptych.serving.server import ServeOptions
    from triptych.serving.server import serve as run_server

    if deployment and model_uri:
        raise InvalidInput(
            "give a model URI or --deployment, not both",
            hint=f"a deployment's models come from its record: triptych serve {DEPLOYMENTS_SCHEME}"
            f"{deployment}",
        )
    target = f"{DEPLOYMENTS_SCHEME}{deployment}" if deployment else model_uri
    if not target:
        raise InvalidInput(
            "nothing to serve", hint="triptych serve models:/NAME@champion (or --deployment NAME)"
        )
    options = ServeOptions(
        target=target,
        host=host,
        port=port,
        workers=workers,
        max_body=max_body,
        poll_interval=poll_interval,
        log_predictions=log_predictions,
        access_log=access_log,
    )
    console = output.console(stderr=True)

    def ready(app: Any) -> None:
        where = f"http://{host}:{port}"
        if app is not None:
            routing = app.service.slots.routing
            who = routing.primary.scorer.identity
            model = f"{who.name} version {who.version}" if who.name else who.uri
            console.print(f"serving [bold]{output.escape(target)}[/] ({output.escape(model)})")
        else:
            console.print(f"serving [bold]{output.escape(target)}[/] with {workers} workers")
        console.print(f"  POST {where}/predict · GET {where}/metadata · Ctrl-C to stop")

    run_server(options, on_ready=ready)
