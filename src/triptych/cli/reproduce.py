"""``triptych reproduce RUN_ID``."""

from __future__ import annotations

from typing import Any

import typer


def reproduce(
    run_id: str = typer.Argument(..., help="Run or pipeline run id (or a unique prefix)."),
    rebuild_env: bool = typer.Option(
        False,
        "--rebuild-env",
        help="Re-create the recorded environment in a fresh virtual environment first.",
    ),
    tolerance: float = typer.Option(
        0.0, "--tolerance", min=0.0, help="Relative difference still counted as reproduced."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the temporary worktree (and environment) afterwards."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Re-run a run or pipeline run from its fingerprint and compare every metric.

    The recorded commit (and uncommitted diff) in a temporary git worktree, the same dataset
    versions, the current or (--rebuild-env) the recorded environment. Exit code 0 when every
    metric is reproduced, 1 when one differs or the run cannot be reproduced."""
    from triptych.cli import output
    from triptych.pipelines.reproduce import reproduce as run_reproduce

    progress = _Progress(output.console(stderr=True))
    try:
        result = run_reproduce(
            run_id, rebuild_env=rebuild_env, tolerance=tolerance, keep=keep, report=progress
        )
    finally:
        progress.stop()
    if json_out:
        output.print_json(output.clean_floats(result.to_dict()))
    else:
        _print(result)
    if not result.reproduced:
        raise typer.Exit(1)


class _Progress:
    """Steps as lines, the re-run's output dimmed, pip's progress on one status line."""

    def __init__(self, console: Any) -> None:
        import threading

        self.console = console
        self.status: Any = None
        self.lock = threading.Lock()  # the re-run's stdout and stderr arrive on two threads

    def __call__(self, kind: str, text: str) -> None:
        with self.lock:
            self._show(kind, text)

    def _show(self, kind: str, text: str) -> None:
        from triptych.cli import output

        if kind == "pip":
            if self.status is None:
                self.status = self.console.status("")
                self.status.start()
            self.status.update(f"[dim]pip:[/] {output.escape(text[:120])}")
            return
        self.stop()
        if kind == "step":
            self.console.print(f"[bold cyan]•[/] {output.escape(text)}", soft_wrap=True)
        else:
            self.console.print(f"  [dim]{output.escape(text)}[/]", soft_wrap=True)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _print(result: Any) -> None:
    from rich.table import Table

    from triptych.cli import output

    console = output.console()
    console.print()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("original", result.run_id)
    head.add_row("reproduction", result.new_run_id)
    code = f"commit {result.commit[:12]}" + (" + recorded diff" if result.diff_applied else "")
    if result.worktree:
        code += f"  [dim](kept at {output.escape(result.worktree)})[/]"
    head.add_row("code", code)
    pins = ", ".join(f"{k}@{v}" for k, v in sorted(result.pins.items()))
    head.add_row("data", output.escape(pins) or "[dim]no registered datasets[/]")
    built = "rebuilt, " if result.rebuilt_env else ""
    env = "same as recorded" if result.environment_same else "differs from the recorded one"
    if result.venv:
        env += f"  [dim](kept at {output.escape(result.venv)})[/]"
    head.add_row("environment", f"{built}{env}")
    same = result.fingerprint_same
    if same:
        legs = ", ".join(f"{k} {'same' if v else '[yellow]differs[/]'}" for k, v in same.items())
        head.add_row("fingerprint", legs)
    console.print(head)
    if result.package_changes:
        table = Table(title="environment differences", title_justify="left", title_style="bold")
        table.add_column("package")
        table.add_column("recorded")
        table.add_column("reproduction")
        for c in result.package_changes:
            table.add_row(output.escape(c.name), c.recorded or "-", c.current or "-")
        console.print(table)
    if result.metrics:
        steps = any(m.step for m in result.metrics)
        table = Table(title="metrics", title_justify="left", title_style="bold")
        if steps:
            table.add_column("step")
        table.add_column("key")
        table.add_column("original", justify="right")
        table.add_column("reproduced", justify="right")
        table.add_column("difference", justify="right")
        table.add_column("")
        for m in result.metrics:
            style = "green" if m.ok else "bold red"
            row = [
                output.escape(m.key),
                _number(m.original),
                _number(m.reproduced),
                _number(m.difference),
                f"[{style}]{m.status}[/]",
            ]
            table.add_row(*([output.escape(m.step or "(pipeline)")] if steps else []), *row)
        console.print(table)
    if result.reproduced:
        counted = f"{len(result.metrics)} metric(s)" if result.metrics else "no metrics to compare"
        console.print(f"[bold green]reproduced[/]: {counted}")
    else:
        keys = ", ".join(f"{m.step}/{m.key}" if m.step else m.key for m in result.differences)
        console.print(f"[bold red]differs[/]: {output.escape(keys)}")


def _number(value: float | None) -> str:
    """Enough digits to see why two values differ (1.79586e+09 twice would not say)."""
    if value is None:
        return "-"
    return "nan" if value != value else f"{value:.12g}"
