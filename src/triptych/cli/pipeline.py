"""``triptych pipeline``: run, show and schedule pipelines."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="Run, show and schedule pipelines.", no_args_is_help=True)

_ICONS = {
    "finished": "[green]✓[/]",
    "FINISHED": "[green]✓[/]",
    "running": "[yellow]▶[/]",
    "RUNNING": "[yellow]▶[/]",
    "failed": "[red]✗[/]",
    "FAILED": "[red]✗[/]",
    "KILLED": "[red]✗[/]",
    "skipped": "[dim]-[/]",
}


def _tags(pairs: list[str]) -> dict[str, str]:
    from triptych.errors import InvalidInput

    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--tag {pair!r} is not key=value")
        out[key] = value
    return out


@app.command("run")
def run_(
    target: str = typer.Argument(..., help="The pipeline file (FILE.py or FILE.py:function)."),
    param: list[str] = typer.Option(
        None, "--param", "-p", help="Override a parameter: step.key=value (repeatable)."
    ),
    executor: str = typer.Option(
        "local", "--executor", "-x", help="local, ray, or ray://host:port for a cluster."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute every step again."),
    experiment: str = typer.Option(
        None, "--experiment", "-e", help="Experiment (default: the pipeline's name)."
    ),
    tag: list[str] = typer.Option(None, "--tag", help="Tag the pipeline run: key=value."),
    workers: int = typer.Option(None, "--workers", help="Parallel steps (local executor)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a pipeline: each step a nested run, cached, independent steps in parallel."""
    from triptych.cli import output
    from triptych.errors import StepFailed
    from triptych.pipelines import params as params_module
    from triptych.pipelines import runner

    console = output.console(stderr=json_out)

    def show(state: runner.StepState) -> None:
        if json_out:
            return
        if state.status == "running":
            console.print(f"{_ICONS['running']} {state.name} [dim]started[/]")
            return
        icon = _ICONS.get(state.status, "?")
        cache = f"[cyan]{state.cache}[/]" if state.cache in ("hit", "resumed") else state.cache
        took = f"{state.duration:.2f}s" if state.cache not in ("hit", "resumed") else ""
        line = f"{icon} {state.name:<16} {cache:<6} {took}"
        if state.error:
            line += f"  [red]{output.escape(state.error.splitlines()[0][:160])}[/]"
        console.print(line)

    overrides = params_module.parse_overrides(param or ())
    try:
        result = runner.run(
            target,
            params=overrides,
            executor=executor,
            cache=not no_cache,
            experiment=experiment,
            tags=_tags(tag),
            workers=workers,
            on_step=show,
        )
    except StepFailed as e:
        if json_out and isinstance(e.result, runner.PipelineResult):
            output.print_json(output.clean_floats(e.result.to_dict()))
        raise
    if json_out:
        output.print_json(output.clean_floats(result.to_dict()))
        return
    reused = sum(1 for s in result.steps.values() if s.cache in ("hit", "resumed"))
    console.print(
        f"[bold]{result.name}[/] {output.status(result.status)} in {result.duration:.2f}s: "
        f"{len(result.steps)} steps, {reused} reused · run {result.run_id}"
    )


@app.command("show")
def show(
    target: str = typer.Argument(..., help="A pipeline file, or the name of one that ran."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Draw a pipeline's steps as a graph, with each step's last status and cache state."""
    from triptych.cli import output
    from triptych.pipelines import history
    from triptych.tracking.client import Client

    client = Client()
    v = history.view(client, target)
    if json_out:
        steps = []
        for s in v.graph["steps"]:
            status, cache = v.step_status(s["name"])
            found = v.steps.get(s["name"])
            steps.append(
                {**s, "status": status, "cache": cache, "run_id": found.run_id if found else None}
            )
        output.print_json(
            {"pipeline": v.name, "run_id": v.run.run_id if v.run else None, "steps": steps}
        )
        return
    from rich.tree import Tree

    head = f"[bold]{v.name}[/]"
    if v.run:
        head += (
            f"  last run {v.run.run_id[:8]} {output.status(v.run.status.value)} "
            f"{output.when(v.run.start_time)}"
        )
    else:
        head += "  [dim](never ran)[/]"
    tree = Tree(head)
    # a tree of the DAG: each step under its deepest parent, its other parents named
    level: dict[str, int] = {}
    for s in v.graph["steps"]:
        level[s["name"]] = 1 + max((level[u] for u in s["upstream"]), default=-1)
    children: dict[str, list[str]] = {s["name"]: [] for s in v.graph["steps"]}
    others: dict[str, list[str]] = {}
    for s in v.graph["steps"]:
        if s["upstream"]:
            parent = max(s["upstream"], key=lambda u: level[u])
            children[parent].append(s["name"])
            others[s["name"]] = [u for u in s["upstream"] if u != parent]

    def label(name: str) -> str:
        status, cache = v.step_status(name)
        icon = _ICONS.get(status, "[dim]·[/]")
        run = v.steps.get(name)
        took = output.duration(run.start_time, run.end_time) if run else ""
        extra = f" [cyan]{cache}[/]" if cache else ""
        also = f" [dim]← also {', '.join(others[name])}[/]" if others.get(name) else ""
        return f"{icon} [bold]{name}[/] [dim]{status}[/]{extra} [dim]{took}[/]{also}"

    def add(branch: Any, name: str) -> None:
        node = branch.add(label(name))
        for child in children[name]:
            add(node, child)

    for s in v.graph["steps"]:
        if not s["upstream"]:
            add(tree, s["name"])
    output.console().print(tree)


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Pipelines that ran, with their last run."""
    from triptych.cli import output
    from triptych.pipelines import history
    from triptych.pipelines.runner import TAG_FILE, TAG_PIPELINE
    from triptych.tracking.client import Client

    runs = history.known(Client())
    if json_out:
        output.print_json(
            [
                {
                    "pipeline": r.tags[TAG_PIPELINE],
                    "file": r.tags.get(TAG_FILE),
                    "last_run_id": r.run_id,
                    "status": r.status.value,
                    "start_time": r.start_time,
                }
                for r in runs
            ]
        )
        return
    console = output.console()
    if not runs:
        console.print("no pipeline has run yet: triptych pipeline run FILE.py")
        return
    from rich.table import Table

    table = Table()
    for col in ("pipeline", "file", "last run", "status", "started", "duration"):
        table.add_column(col, no_wrap=True)
    for r in runs:
        table.add_row(
            r.tags[TAG_PIPELINE],
            output.escape(r.tags.get(TAG_FILE, "")),
            r.run_id[:8],
            output.status(r.status.value),
            output.when(r.start_time, short=True),
            output.duration(r.start_time, r.end_time),
        )
    console.print(table)


from triptych.cli import schedules  # noqa: E402  (registers its commands on app)

schedules.register(app)
