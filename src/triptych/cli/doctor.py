"""``triptych doctor``: the project's MLOps maturity and ML Test Score, with the evidence."""

from __future__ import annotations

from pathlib import Path

import typer


def doctor(
    path: Path = typer.Argument(Path("."), help="The project folder (default: here)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Report the MLOps maturity level (0-4) and the ML Test Score per section, each point
    naming what it found, and the next steps to climb."""
    from rich.table import Table

    from triptych.cli import output
    from triptych.scaffold import doctor as doctors

    d = doctors.diagnose(path)
    if json_out:
        output.print_json(d.to_dict())
        return
    console = output.console()
    esc = output.escape
    console.print(f"[bold]{esc(d.path)}[/]  store {esc(d.store or '(none yet)')}")
    console.print(f"maturity: [bold]level {d.level}[/] — {d.level_name}")
    for level in d.levels[1:]:
        mark = "[green]✓[/]" if level["met"] else "[red]✗[/]"
        console.print(f" {mark} level {level['level']} {level['name']}")
        for p in level["requirements"]:
            ok = "[green]✓[/]" if p["score"] >= 1 else ("[yellow]½[/]" if p["score"] else "·")
            console.print(f"     {ok} {esc(p['title'])}: [dim]{esc(p['evidence'])}[/]")
    table = Table(title=f"ML Test Score: {d.ml_test_score:g} (the lowest section)")
    for column in ("section", "test", "score", "evidence"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for t in d.tests:
        table.add_row(t.section or "", esc(t.title), f"{t.score:g}", esc(t.evidence))
    console.print(table)
    console.print("sections: " + ", ".join(f"{k} {v:g}" for k, v in d.sections.items()))
    if d.next_steps:
        console.print("[bold]next steps[/]")
        for step in d.next_steps:
            console.print(f"  - {esc(step)}")
