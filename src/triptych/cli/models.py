"""``triptych models …``"""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    help="Register model versions, move aliases, read the audit trail.", no_args_is_help=True
)


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


def _version_dict(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "uri": v.uri,
        "source": v.source,
        "run_id": v.run_id,
        "aliases": list(v.aliases),
        "tags": dict(v.tags),
        "description": v.description,
        "user": v.user,
        "creation_time": v.creation_time,
    }


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Registered models with their latest version and aliases."""
    from triptych.cli import output
    from triptych.models import registry

    found = registry.list_models(client=_client())
    if json_out:
        output.print_json(
            [
                {
                    "name": m.name,
                    "latest_version": m.latest_version,
                    "versions": m.versions,
                    "aliases": dict(m.aliases),
                    "description": m.description,
                    "tags": dict(m.tags),
                    "last_update_time": m.last_update_time,
                }
                for m in found
            ]
        )
        return
    console = output.console()
    if not found:
        console.print(
            "no registered models yet: triptych models register runs:/<run_id>/model NAME"
        )
        return
    from rich.table import Table

    table = Table()
    for column in ("name", "latest", "versions", "aliases", "updated"):
        table.add_column(column, justify="right" if column in ("latest", "versions") else "left")
    for m in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items()) or "-"
        table.add_row(
            output.escape(m.name),
            str(m.latest_version or "-"),
            str(m.versions),
            output.escape(aliases),
            output.when(m.last_update_time),
        )
    console.print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME (all versions), NAME/3 or NAME@alias."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A model's versions, or one version."""
    from triptych.cli import output
    from triptych.models import registry

    client = _client()
    parsed = registry.parse_ref(ref)
    if parsed.version is None and parsed.alias is None and "@" not in ref:
        found = registry.versions(parsed.name, client=client)
    else:
        found = [registry.get(ref, client=client)]
    if json_out:
        output.print_json([_version_dict(v) for v in found])
        return
    from rich.table import Table

    table = Table(title=f"model {output.escape(parsed.name)}", title_justify="left")
    for column in ("version", "aliases", "source", "registered", "by", "tags", "description"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for v in found:
        table.add_row(
            str(v.version),
            output.escape(", ".join(v.aliases) or "-"),
            output.escape(v.source),
            output.when(v.creation_time),
            output.escape(v.user or "-"),
            output.escape(", ".join(f"{k}={x}" for k, x in sorted(v.tags.items())) or "-"),
            output.escape(v.description or ""),
        )
    output.console().print(table)


@app.command()
def register(
    source: str = typer.Argument(..., help="runs:/<run_id>/<path> of logged model files."),
    name: str = typer.Argument(..., help="Registered model name."),
    description: str = typer.Option(None, "--description", "-d", help="What this version is."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
    alias: str = typer.Option(None, "--alias", "-a", help="Also point this alias at it."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Register the model files of a run as the next version of NAME."""
    from triptych.cli import output
    from triptych.models import registry

    client = _client()
    version = registry.register(source, name, description=description, reason=reason, client=client)
    if alias:
        registry.set_alias(name, alias, version.version, reason=reason, client=client)
        version = registry.get(version.uri, client=client)
    if json_out:
        output.print_json(_version_dict(version))
        return
    suffix = f" (@{alias})" if alias else ""
    output.console().print(f"registered {version.uri}{suffix} from {version.source}")


@app.command()
def alias(
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="champion, challenger, …"),
    version: int = typer.Argument(None, help="Version to point at (omit with --delete)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
) -> None:
    """Point an alias at a version (or remove it); recorded in the audit trail."""
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.models import registry

    client = _client()
    console = output.console()
    if delete:
        registry.delete_alias(name, alias_name, reason=reason, client=client)
        console.print(f"removed {name}@{alias_name}")
        return
    if version is None:
        raise InvalidInput("give the VERSION the alias should point at", hint="or pass --delete")
    previous = registry.set_alias(name, alias_name, version, reason=reason, client=client)
    moved = f" (was {previous})" if previous is not None else ""
    console.print(f"{name}@{alias_name} → version {version}{moved}")


@app.command()
def history(
    name: str = typer.Argument(..., help="Registered model name."),
    at: str = typer.Option(
        None, "--at", help="A time (ISO 8601): show which version each alias pointed at then."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The audit trail: registrations, alias moves, deletions, gate decisions."""
    from triptych.cli import output
    from triptych.models import registry

    client = _client()
    if at is not None:
        when = registry.parse_when(at)
        state = registry.aliases_at(name, when, client=client)
        if json_out:
            output.print_json({"name": name, "at": when.isoformat(), "aliases": state})
            return
        console = output.console()
        if not state:
            console.print(f"no alias of {name} pointed at a version at {when.isoformat()}")
        for alias_name, version in state.items():
            console.print(f"{name}@{alias_name} → version {version}  (at {when.isoformat()})")
        return
    events = registry.history(name, client=client)
    if json_out:
        output.print_json(
            [
                {
                    "time": e.time,
                    "action": e.action,
                    "version": e.version,
                    "alias": e.alias,
                    "previous_version": e.previous_version,
                    "user": e.user,
                    "reason": e.reason,
                    "details": e.details,
                }
                for e in events
            ]
        )
        return
    from rich.table import Table

    table = Table(title=f"history of {output.escape(name)}", title_justify="left")
    for column in ("time", "action", "version", "alias", "by", "reason"):
        table.add_column(column)
    for e in events:
        version = str(e.version) if e.version is not None else "-"
        if e.previous_version is not None:
            version = f"{e.previous_version} → {version}" if e.action == "alias" else version
        table.add_row(
            output.when(e.time),
            e.action,
            version,
            output.escape(e.alias or "-"),
            output.escape(e.user or "-"),
            output.escape(e.reason or ""),
        )
    output.console().print(table)


@app.command()
def delete(
    ref: str = typer.Argument(..., help="NAME/VERSION to delete."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
) -> None:
    """Delete a version and the aliases on it (the run's files stay)."""
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.models import registry

    parsed = registry.parse_ref(ref)
    if parsed.version is None:
        raise InvalidInput("name the version to delete", hint=f"e.g. {parsed.name}/3")
    registry.delete_version(parsed.name, parsed.version, reason=reason, client=_client())
    output.console().print(f"deleted models:/{parsed.name}/{parsed.version}")


@app.command()
def gate(
    run_id: str = typer.Argument(..., help="The candidate run (id or unique prefix)."),
    name: str = typer.Argument(..., help="Registered model name."),
    metric: str = typer.Option("mse", "--metric", help="Metric the run logged."),
    direction: str = typer.Option("minimize", "--direction", help="minimize or maximize."),
    min_delta: float = typer.Option(0.0, "--min-delta", help="Required improvement."),
    alias_name: str = typer.Option("champion", "--alias", help="Alias the candidate must win."),
    model_path: str = typer.Option("model", "--model-path", help="Model folder in the run."),
    holdout: str = typer.Option(
        None, "--holdout", help="The candidate's test data (datasets:/… or a file), to re-score"
    ),
    target: str = typer.Option("target", "--target", help="Target column of --holdout."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Register the run's model and move the alias only if it beats the current one; exit 1
    when refused. The decision and its numbers go into the audit trail."""
    from triptych.cli import output
    from triptych.models import registry

    client = _client()
    run = client.find_run(run_id)
    data = None
    if holdout:
        import triptych.data

        if holdout.startswith("datasets:/"):
            data = triptych.data.load(holdout, client=client)
        else:
            import tempfile
            from pathlib import Path

            import pyarrow.parquet as pq

            from triptych.data.ingest import ingest

            with tempfile.TemporaryDirectory() as tmp:
                data = pq.read_table(ingest(holdout, Path(tmp)).path).to_pandas()
    decision = registry.gate(
        run.run_id,
        name,
        metric=metric,
        direction=direction,
        min_delta=min_delta,
        alias=alias_name,
        model_path=model_path,
        holdout=data,
        target=target,
        client=client,
    )
    if json_out:
        output.print_json(output.clean_floats(decision.to_dict()))
    else:
        style = "green" if decision.passed else "bold red"
        output.console().print(f"[{style}]{output.escape(decision.reason)}[/]")
    if not decision.passed:
        raise typer.Exit(1)


@app.command()
def card(
    ref: str = typer.Argument(..., help="NAME/VERSION or NAME@alias."),
    output_file: str = typer.Option(None, "--output", "-o", help="Write the Markdown here."),
) -> None:
    """A model card in Markdown: metrics, params, data, code, environment, lineage, gate."""
    from pathlib import Path

    from triptych.models.card import card as render

    text = render(ref, client=_client())
    if output_file:
        Path(output_file).write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def policy(
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="e.g. production"),
    require_approval: bool = typer.Option(
        ..., "--require-approval/--no-approval", help="Moves need another person's approval."
    ),
) -> None:
    """Set whether moving ALIAS needs an approval by someone other than the requester."""
    from triptych.cli import output
    from triptych.models import registry

    registry.set_policy(name, alias_name, require_approval=require_approval, client=_client())
    state = "needs an approval" if require_approval else "needs no approval"
    output.console().print(f"moving {name}@{alias_name} now {state}")


@app.command()
def request(
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="e.g. production"),
    version: int = typer.Argument(..., help="Version the alias should point at."),
    reason: str = typer.Option(None, "--reason", help="Why, for the approver and the trail."),
) -> None:
    """Ask for an alias move that needs an approval."""
    from triptych.cli import output
    from triptych.models import registry

    req = registry.request_alias(name, alias_name, version, reason=reason, client=_client())
    output.console().print(
        f"request {req.request_id}: {name}@{alias_name} → version {version}, waiting for approval"
    )


def _decide(request_id: int, approve: bool, reason: str | None) -> None:
    from triptych.cli import output
    from triptych.models import registry

    decide = registry.approve if approve else registry.reject
    req = decide(request_id, reason=reason, client=_client())
    output.console().print(
        f"request {req.request_id} {req.status}: {req.name}@{req.alias} → version {req.version}"
    )


@app.command()
def approve(
    request_id: int = typer.Argument(..., help="Request number."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
) -> None:
    """Approve someone else's request: the alias moves now."""
    _decide(request_id, True, reason)


@app.command()
def reject(
    request_id: int = typer.Argument(..., help="Request number."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
) -> None:
    """Reject a request."""
    _decide(request_id, False, reason)


@app.command()
def requests(
    name: str = typer.Argument(..., help="Registered model name."),
    pending: bool = typer.Option(False, "--pending", help="Only requests still waiting."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Alias requests of a model and what became of them."""
    from dataclasses import asdict

    from triptych.cli import output
    from triptych.models import registry

    found = registry.requests(name, status="pending" if pending else None, client=_client())
    if json_out:
        output.print_json([asdict(r) for r in found])
        return
    from rich.table import Table

    table = Table()
    for column in ("id", "alias", "version", "by", "status", "decided by", "reason"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r.request_id),
            r.alias,
            str(r.version),
            output.escape(r.requester or "-"),
            r.status,
            output.escape(r.decided_by or "-"),
            output.escape(r.decision_reason or r.reason or ""),
        )
    output.console().print(table)
