"""``triptych smoke-test URL`` and ``triptych build-image MODEL_URI``: the release checks."""

from __future__ import annotations

from pathlib import Path

import typer


def smoke_test(
    url: str = typer.Argument(..., help="The scoring server, e.g. http://127.0.0.1:8080"),
    model: str | None = typer.Option(
        None, "--model", help="The model the server must answer with; its example is posted."
    ),
    retries: int = typer.Option(5, "--retries", help="Retries (with backoff) while it starts."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds per request."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Post the model's input example to a server and check the answer; exit 1 if it fails."""
    from triptych.cli import output
    from triptych.release.smoke import smoke_test as run_smoke_test
    from triptych.tracking.client import Client

    result = run_smoke_test(url, model=model, retries=retries, timeout=timeout, client=Client())
    if json_out:
        output.print_json(result.to_dict())
        return
    who = result.model
    output.console().print(
        f"[green]ok[/] {output.escape(result.url)}: {result.rows} row(s) → "
        f"{result.rows} prediction(s) from {output.escape(str(who.get('name')))} "
        f"version {who.get('version')} in {result.latency_ms:.1f} ms "
        f"(request {result.request_id}, {result.attempts} tries)"
    )


def build_image(
    model_uri: str = typer.Argument(..., help="models:/NAME@alias, models:/NAME/3 or runs:/…"),
    tag: str = typer.Option(..., "--tag", "-t", help="The image name, e.g. diabetes:3"),
    context: Path | None = typer.Option(
        None, "--context", help="Folder for the build context (default: a new temp folder)."
    ),
    no_build: bool = typer.Option(False, "--no-build", help="Only write the build context."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write a Docker build context serving the model (and build it when docker is here)."""
    from triptych.cli import output
    from triptych.release.image import build_image as run_build_image
    from triptych.tracking.client import Client

    result = run_build_image(model_uri, tag, context=context, build=not no_build, client=Client())
    if json_out:
        output.print_json(result.to_dict())
        return
    console = output.console()
    console.print(f"build context for {output.escape(model_uri)} in {result.context}")
    if result.built:
        console.print(f"[green]built[/] {output.escape(tag)}")
    else:
        console.print(
            f"not built ({output.escape(result.reason or '')}); build it with: "
            f"docker build -t {output.escape(tag)} {result.context}"
        )
