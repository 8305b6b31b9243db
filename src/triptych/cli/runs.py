"""``triptych runs …``"""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="List, show, compare, delete and restore runs.", no_args_is_help=True)
MAX_COLUMNS = 4  # params and metrics shown as columns in `runs list`
SHORT_ID = 8  # like git, a unique prefix is enough for `runs show`; --json has full ids


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


@app.command("list")
def list_(
    experiment: list[str] = typer.Option(
        None, "--experiment", "-e", help="Experiment name or id (repeatable; default: all)."
    ),
    filter_: str = typer.Option(
        "", "--filter", "-f", help="e.g. \"metrics.mse < 3000 and params.alpha = '0.5'\"."
    ),
    sort: list[str] = typer.Option(
        None, "--sort", "-s", help="e.g. 'metrics.mse' or 'start_time DESC' (repeatable)."
    ),
    max_results: int = typer.Option(50, "--max", "-n", help="At most this many runs."),
    all_: bool = typer.Option(False, "--all", help="Include deleted runs."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs, newest first."""
    from triptych.cli import output

    client = _client()
    experiments = {e.experiment_id: e.name for e in client.list_experiments()}
    ids = [client.resolve_experiment(e).experiment_id for e in experiment] if experiment else None
    page = client.search_runs(
        ids, filter_, sort or (), max_results=max_results, include_deleted=all_
    )
    if json_out:
        output.print_json(output.clean_floats([r.to_dict() for r in page.items]))
        return
    console = output.console()
    if not page.items:
        console.print("no runs found" + (" for this filter" if filter_ else ""))
        return
    from rich.table import Table

    param_keys = sorted({k for r in page.items for k in r.params})
    metric_keys = sorted({k for r in page.items for k in r.metrics})
    several = len({r.experiment_id for r in page.items}) > 1
    table = Table(caption=_caption(page, param_keys, metric_keys), caption_justify="left")
    table.add_column("run id", no_wrap=True)
    table.add_column("name", no_wrap=True, max_width=20)
    if several:
        table.add_column("experiment", max_width=20)
    for column in ("status", "started", "duration"):
        table.add_column(column, no_wrap=True)
    # Headers are bare keys, coloured by kind (params blue, metrics magenta), to fit a terminal.
    for key in param_keys[:MAX_COLUMNS]:
        table.add_column(output.escape(key), style="blue", header_style="bold blue", min_width=3)
    for key in metric_keys[:MAX_COLUMNS]:
        table.add_column(
            output.escape(key),
            justify="right",
            style="magenta",
            header_style="bold magenta",
            min_width=5,
        )
    for r in page.items:
        table.add_row(
            r.run_id[:SHORT_ID],
            output.escape(r.name),
            *(
                [output.escape(experiments.get(r.experiment_id, r.experiment_id))]
                if several
                else []
            ),
            output.status(r.status.value),
            output.when(r.start_time, short=True),
            output.duration(r.start_time, r.end_time),
            *[output.escape(r.params.get(k, "-")) for k in param_keys[:MAX_COLUMNS]],
            *[output.number(r.metrics.get(k)) for k in metric_keys[:MAX_COLUMNS]],
        )
    console.print(table)


def _caption(page: Any, params: list[str], metrics: list[str]) -> str:
    notes = []
    hidden = max(0, len(params) - MAX_COLUMNS) + max(0, len(metrics) - MAX_COLUMNS)
    if hidden:
        notes.append(f"{hidden} more param/metric columns: see `runs show` or `--json`")
    notes.append("ids are prefixes: `triptych runs show <id>` accepts them")
    if page.next_page_token:
        notes.append("more runs match: raise --max or narrow --filter")
    return "; ".join(notes)


@app.command()
def show(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run: status, fingerprint (code, environment, data), params, metrics, artifacts."""
    from triptych.cli import output

    client = _client()
    run = client.find_run(run_id)
    artifacts = client.store.walk_artifacts(run.run_id)
    env = None
    if run.fingerprint and run.fingerprint.env_digest:
        env = client.get_environment(run.fingerprint.env_digest)
    if json_out:
        data = run.to_dict()
        data["artifacts"] = [
            {"path": a.path, "digest": a.digest, "size": a.size} for a in artifacts
        ]
        if env is not None:
            data["environment"] = {
                "digest": env.digest,
                "python": env.python,
                "platform": env.platform,
                "packages": dict(env.packages),
            }
        output.print_json(output.clean_floats(data))
        return
    from rich.table import Table

    console = output.console()
    experiment = client.get_experiment(run.experiment_id).name
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", f"{run.run_id}  [dim]({output.escape(run.name)})[/]")
    head.add_row("experiment", output.escape(experiment))
    head.add_row("status", output.status(run.status.value) + _reason(run))
    head.add_row("started", f"{output.when(run.start_time)} by {run.user or '-'}")
    head.add_row("duration", output.duration(run.start_time, run.end_time))
    if run.parent_run_id:
        head.add_row("parent", run.parent_run_id)
    console.print(head)

    console.print()
    console.print("[bold]fingerprint[/]")
    fp = run.fingerprint
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    if fp is None:
        grid.add_row("", "not recorded")
    else:
        code = fp.code
        grid.add_row("digest", fp.digest)
        commit = code.commit or "not a git checkout"
        dirty = f" + uncommitted diff {code.diff_digest[:12]}" if code.diff_digest else ""
        grid.add_row("code", f"{commit}{dirty}  [dim]{code.digest[:12]}[/]")
        if code.branch or code.remote:
            grid.add_row("", output.escape(f"{code.branch or '-'} @ {code.remote or 'no remote'}"))
        grid.add_row("", output.escape(f"entry point: {code.entry_point or '-'}"))
        if env is not None:
            grid.add_row(
                "environment",
                f"Python {env.python} on {output.escape(env.platform)}, "
                f"{len(env.packages)} packages  [dim]{env.digest[:12]}[/]",
            )
        if run.inputs:
            for item in run.inputs:
                rows = f"{item.rows} rows, " if item.rows is not None else ""
                cols = f"{len(item.schema)} columns, " if item.schema else ""
                grid.add_row(
                    "data" if item is run.inputs[0] else "",
                    output.escape(f"{item.name}: {rows}{cols}{item.digest[:12]}"),
                )
        else:
            grid.add_row("data", "no inputs logged")
    console.print(grid)

    for title, values in (("params", run.params), ("tags", run.tags)):
        if values:
            console.print()
            table = Table(title=title, title_justify="left", title_style="bold")
            table.add_column("key")
            table.add_column("value")
            for key in sorted(values):
                table.add_row(output.escape(key), output.escape(values[key]))
            console.print(table)
    if run.metrics:
        console.print()
        table = Table(title="metrics", title_justify="left", title_style="bold")
        table.add_column("key")
        table.add_column("value", justify="right")
        for key in sorted(run.metrics):
            table.add_row(output.escape(key), output.number(run.metrics[key]))
        console.print(table)
    if artifacts:
        console.print()
        table = Table(title="artifacts", title_justify="left", title_style="bold")
        table.add_column("path")
        table.add_column("size", justify="right")
        table.add_column("sha256", style="dim")
        for a in artifacts:
            table.add_row(output.escape(a.path), output.size(a.size), (a.digest or "")[:12])
        console.print(table)


def _reason(run: Any) -> str:
    from triptych.cli import output

    reason = run.tags.get("triptych.status_reason")
    return (
        f"  [dim]({output.escape(reason)})[/]" if reason and run.status.value != "RUNNING" else ""
    )


@app.command()
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Params and metrics of runs side by side; differing params are highlighted."""
    from triptych.cli import output

    client = _client()
    found = [client.find_run(r) for r in run_ids]
    params = sorted({k for r in found for k in r.params})
    metrics = sorted({k for r in found for k in r.metrics})
    if json_out:
        output.print_json(
            output.clean_floats(
                {
                    "runs": [r.run_id for r in found],
                    "params": {k: [r.params.get(k) for r in found] for k in params},
                    "metrics": {k: [r.metrics.get(k) for r in found] for k in metrics},
                }
            )
        )
        return
    from rich.table import Table

    table = Table()
    table.add_column("")
    for r in found:
        table.add_column(f"{r.run_id[:SHORT_ID]}\n{output.escape(r.name)}", justify="right")
    for key in params:
        values = [r.params.get(key) for r in found]
        differs = len(set(values)) > 1
        cells = [output.escape(v) if v is not None else "-" for v in values]
        if differs:
            cells = [f"[bold yellow]{c}[/]" for c in cells]
        table.add_row(f"params.{output.escape(key)}", *cells)
    if params and metrics:
        table.add_section()
    for key in metrics:
        table.add_row(
            f"metrics.{output.escape(key)}", *[output.number(r.metrics.get(key)) for r in found]
        )
    output.console().print(table)


@app.command()
def delete(run_ids: list[str] = typer.Argument(..., help="Run ids (or unique prefixes).")) -> None:
    """Delete runs (restorable with `runs restore`)."""
    client = _client()
    for run_id in run_ids:
        run = client.find_run(run_id)
        client.delete_run(run.run_id)
        typer.echo(f"deleted {run.run_id}")


@app.command()
def restore(run_ids: list[str] = typer.Argument(..., help="Run ids (or unique prefixes).")) -> None:
    """Restore deleted runs."""
    client = _client()
    for run_id in run_ids:
        run = client.find_run(run_id)
        client.restore_run(run.run_id)
        typer.echo(f"restored {run.run_id}")
