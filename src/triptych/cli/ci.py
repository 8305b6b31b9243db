"""``triptych ci``: the CI gates (lint, unit, data, train, gate), run locally."""

from __future__ import annotations

from pathlib import Path

import typer


def ci(
    path: Path = typer.Argument(Path("."), help="The project folder (default: here)."),
    only: list[str] = typer.Option(
        None,
        "--only",
        metavar="GATES",
        help="Run only these gates: lint,unit,data,train,gate (repeat or comma).",
    ),
    keep_going: bool = typer.Option(
        False, "--keep-going", help="Run every gate even after one fails."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run the gates a CI job runs, in order, stopping at the first failure; exit 1 unless
    every gate that ran passed."""
    from rich.table import Table

    from triptych.cli import output
    from triptych.scaffold import gates

    console = output.console()
    marks = {gates.PASSED: "[green]✓[/]", gates.FAILED: "[red]✗[/]", gates.SKIPPED: "[dim]-[/]"}

    def progress(result: gates.GateResult) -> None:
        if not json_out:
            console.print(
                f"{marks[result.status]} {result.name:<6} {result.duration:6.2f}s  "
                f"{output.escape(result.detail)}"
            )

    report = gates.run(path, only=only, keep_going=keep_going, on_gate=progress)
    if json_out:
        output.print_json(report.to_dict())
    else:
        table = Table(title=f"triptych ci {output.escape(report.path)}", title_justify="left")
        for column in ("gate", "status", "duration", "detail"):
            table.add_column(column, justify="right" if column == "duration" else "left")
        for g in report.gates:
            table.add_row(
                g.name,
                f"{marks[g.status]} {g.status}",
                f"{g.duration:.2f}s",
                output.escape(g.detail),
            )
        console.print(table)
        for g in report.gates:
            if g.status == gates.FAILED and g.output:
                console.print(f"[bold red]{g.name}[/] output:")
                console.print(output.escape(g.output), highlight=False)
    if not report.passed:
        raise typer.Exit(1)
