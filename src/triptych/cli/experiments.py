"""``triptych experiments …``"""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    help="List, create, rename, delete and restore experiments.", no_args_is_help=True
)


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List experiments."""
    from triptych.cli import output

    found = _client().list_experiments(include_deleted=all_)
    if json_out:
        output.print_json(
            [
                {
                    "experiment_id": e.experiment_id,
                    "name": e.name,
                    "lifecycle": e.lifecycle.value,
                    "creation_time": e.creation_time,
                    "tags": dict(e.tags),
                }
                for e in found
            ]
        )
        return
    from rich.table import Table

    table = Table()
    for column in ("id", "name", "created", *(["state"] if all_ else [])):
        table.add_column(column)
    for e in found:
        row = [e.experiment_id, output.escape(e.name), output.when(e.creation_time)]
        table.add_row(*row, *([e.lifecycle.value] if all_ else []))
    console = output.console()
    if not found:
        console.print("no experiments yet: start one with triptych.start_run(experiment=...)")
        return
    console.print(table)


@app.command()
def create(name: str = typer.Argument(..., help="Experiment name.")) -> None:
    """Create an experiment and print its id."""
    typer.echo(_client().create_experiment(name))


@app.command()
def rename(
    experiment: str = typer.Argument(..., help="Name or id."),
    new_name: str = typer.Argument(..., help="The new name."),
) -> None:
    """Rename an experiment."""
    client = _client()
    client.rename_experiment(client.resolve_experiment(experiment).experiment_id, new_name)


@app.command()
def delete(experiment: str = typer.Argument(..., help="Name or id.")) -> None:
    """Delete an experiment (restorable with `experiments restore`)."""
    client = _client()
    client.delete_experiment(client.resolve_experiment(experiment).experiment_id)


@app.command()
def restore(experiment: str = typer.Argument(..., help="Name or id.")) -> None:
    """Restore a deleted experiment."""
    client = _client()
    client.restore_experiment(client.resolve_experiment(experiment).experiment_id)
