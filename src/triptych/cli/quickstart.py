"""``triptych quickstart``: the whole story on the diabetes example, in one command."""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart(
    folder: Path = typer.Argument(
        Path("triptych-quickstart"), help="A new (or empty) folder for the project."
    ),
    budget: float = typer.Option(15.0, "--budget", min=1.0, help="AutoML seconds per training."),
    rows: int = typer.Option(200, "--rows", min=50, help="Patients per traffic phase."),
    port: int | None = typer.Option(None, "--port", help="Port to serve on (default: a free one)."),
    json_out: bool = typer.Option(False, "--json", help="Print the story as JSON."),
) -> None:
    """Scaffold a project, train with AutoML, gate, deploy on a local port, send traffic and
    drifted traffic, monitor, retrain, promote, and say where to look."""
    import time

    from triptych.cli import output
    from triptych.scaffold import quickstart as qs

    console = output.console(stderr=json_out)
    start = time.perf_counter()
    status = console.status("project: scaffolding …")
    names = ["project", "train", "deploy", "traffic", "drift", "watch", "report"]
    hints = {
        "train": "training pipeline with AutoML …",
        "deploy": "deploying and monitoring …",
        "traffic": "serving ordinary traffic …",
        "drift": "serving drifted traffic; the loop may retrain …",
        "watch": "watching the new champion on live labels …",
        "report": "writing the report …",
    }

    def done(name: str, summary: str) -> None:
        console.print(
            f"[green]✓[/] [bold]{name}[/] {output.escape(summary)} "
            f"[dim]({time.perf_counter() - start:.0f} s)[/]"
        )
        following = names[names.index(name) + 1 :] if name in names else []
        if following:
            status.update(f"{following[0]}: {hints[following[0]]}")

    with status:
        story = qs.run(folder, budget_s=budget, rows=rows, port=port, on_step=done)
    if json_out:
        output.print_json(story.to_dict())
        return
    console.print(f"\ndone in {time.perf_counter() - start:.0f} s. Where to look:")
    for line in story.look:
        console.print(f"  {output.escape(line)}")
