"""``triptych import …``: bring another tool's history in (today: MLflow)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import history from another tool's store.", no_args_is_help=True)


@app.command("mlflow")
def mlflow(
    source: str = typer.Option(
        ..., "--from", help="MLflow tracking URI: sqlite:///mlflow.db or http://host:port."
    ),
    experiments: list[str] = typer.Option(
        None, "--experiments", help="Only these experiments (repeatable; default: all)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy MLflow experiments, runs and registered models; a second import adds nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from triptych.cli import output
    from triptych.interop.mlflow_import import import_mlflow

    console = output.console(stderr=True)
    with Progress(
        TextColumn("importing runs"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("runs", total=None)
        report = import_mlflow(
            source,
            experiments=experiments or (),
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if json_out:
        output.print_json(report.as_dict())
        return
    out = output.console()
    out.print(
        f"imported {report.runs_imported} runs ({report.runs_skipped} already there"
        f"{f', {report.runs_resumed} resumed' if report.runs_resumed else ''}), "
        f"{report.metrics} metric points, {report.artifacts} artifact files, "
        f"{report.experiments_created} new experiments, "
        f"{report.registered_models_created} new models, "
        f"{report.model_versions_imported} model versions "
        f"({report.model_versions_skipped} already there), {report.aliases_set} aliases"
    )
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {output.escape(warning)}")
