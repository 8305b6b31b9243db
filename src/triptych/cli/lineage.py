"""``triptych lineage REQUEST_ID``: prediction → model → run → data → code → environment."""

from __future__ import annotations

from typing import Any

import typer


def lineage(
    request_id: str = typer.Argument(..., help="The request_id a prediction answer carried."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show everything behind one served prediction: model version, run, data, code, environment."""
    from triptych.cli import output
    from triptych.serving import lineage as service
    from triptych.tracking.client import Client

    found = service.trace(request_id, client=Client())
    if json_out:
        output.print_json(output.clean_floats(found.to_dict()))
        return
    output.console().print(_tree(found))


def _tree(found: Any) -> Any:
    from rich.tree import Tree

    from triptych.cli.output import escape, when

    p = found.prediction
    outputs = p["outputs"] if len(p["outputs"]) <= 5 else [*p["outputs"][:5], "…"]
    root = Tree(
        f"[bold]prediction[/] {p['request_id']}  {when(p['time_ms'])}  status {p['status']}  "
        f"{p['latency_ms']:.2f} ms"
    )
    root.add(
        escape(
            f"{p['rows']} row(s) → {outputs}"
            + (f"  deployment {p['deployment']} ({p['variant']})" if p["deployment"] else "")
            + f"  logged by serving run {p['serving_run_id']}"
        )
    )
    if p["error"]:
        root.add(f"[red]error:[/] {escape(p['error'])}")
    m = found.model
    if m:
        aliases = f"  @{', @'.join(m['aliases'])}" if m["aliases"] else ""
        node = root.add(f"[bold]model[/] {escape(m['uri'])}{escape(aliases)}  ← {m['source']}")
    else:
        node = root.add(f"[bold]model[/] {escape(p['model_uri'])} [dim](not registered)[/]")
    run = found.run
    if run is None:
        _problems(root, found.problems)
        return root
    run_node = node.add(
        f"[bold]run[/] {run['run_id']} {escape(run['name'])!s} in {escape(run['experiment'])}  "
        f"{run['status']}  fingerprint {(run['fingerprint'] or '-')[:12]}"
    )
    data = run_node.add("[bold]data[/]")
    for item in found.data:
        versions = ", ".join(item["dataset_versions"]) or "not registered"
        rows = f"{item['rows']} rows, " if item["rows"] is not None else ""
        data.add(escape(f"{item['name']}  ({rows}sha256 {item['digest'][:12]})  {versions}"))
    code = found.code
    if code:
        state = f"dirty, diff {code['diff_digest'][:12]}" if code["dirty"] else "clean"
        commit = (code["commit"] or "no git")[:12]
        run_node.add(
            escape(
                f"code: commit {commit} on {code['branch'] or '-'} ({state})  "
                f"entry {code['entry_point'] or '-'}"
            )
        )
    env = found.environment
    if env:
        run_node.add(
            escape(
                f"environment {env['digest'][:12]}: Python {env['python']} on {env['platform']}, "
                f"{env['package_count']} packages (digest {env['packages_digest'][:12]})"
            )
        )
    _problems(root, found.problems)
    return root


def _problems(root: Any, problems: list[str]) -> None:
    from triptych.cli.output import escape

    for problem in problems:
        root.add(f"[yellow]missing:[/] {escape(problem)}")
