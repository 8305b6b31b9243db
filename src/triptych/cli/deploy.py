"""``triptych deploy …``: deployments, their canary, promotion, rollback and audit trail."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    help="Deployments: what a server serves (primary, canary, shadow), audited.",
    no_args_is_help=True,
)

_JSON = typer.Option(False, "--json", help="Print JSON.")
_REASON = typer.Option(None, "--reason", help="Why, for the audit trail.")


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


def _dict(d: Any) -> dict[str, Any]:
    from triptych.store.deployments import spec_to_dict

    return {
        "name": d.name,
        "uri": d.uri,
        **spec_to_dict(d.spec),
        "revision": d.revision,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "created_by": d.created_by,
    }


def _event_dict(e: Any) -> dict[str, Any]:
    from triptych.store.deployments import spec_to_dict

    return {
        "revision": e.revision,
        "action": e.action,
        "actor": e.actor,
        "time": e.time,
        "reason": e.reason,
        "before": spec_to_dict(e.before) if e.before else None,
        "after": spec_to_dict(e.after) if e.after else None,
        "details": e.details,
    }


def _serves(address: str | None, client: Any) -> str:
    """What an address serves now, for people: ``diabetes v2`` or the run's files."""
    if address is None:
        return "-"
    from triptych.deployments import target
    from triptych.errors import TriptychError

    try:
        t = target(address, client=client)
    except TriptychError as e:
        return f"[red]unresolved: {_esc(e.message)}[/]"
    return f"{_esc(t.model_name)} v{t.model_version}" if t.model_name else _esc(t.source)


def _esc(text: str | None) -> str:
    from triptych.cli import output

    return output.escape(text or "")


def _change(e: Any) -> str:
    """One line saying what an event changed."""
    if e.before is None:
        return f"primary {e.after.primary}" + (
            f", canary {e.after.canary} {e.after.canary_weight}%" if e.after.canary else ""
        )
    if e.after is None:
        return "deleted"

    def canary(spec: Any) -> str | None:
        return f"{spec.canary} {spec.canary_weight}%" if spec.canary else None

    parts = []
    b, a = e.before, e.after
    changes = [("primary", b.primary, a.primary), ("shadow", b.shadow, a.shadow)]
    if b.canary == a.canary and b.canary:  # same canary: only its share changed (or nothing)
        changes.insert(1, ("canary weight", f"{b.canary_weight}%", f"{a.canary_weight}%"))
    else:
        changes.insert(1, ("canary", canary(b), canary(a)))
    for label, old, new in changes:
        if old != new:
            parts.append(f"{label} {old or '-'} → {new or '-'}")
    if b.thresholds != a.thresholds:
        parts.append("thresholds")
    moved = (e.details or {}).get("alias")
    if moved:
        parts.append(f"{moved['model']}@{moved['alias']} v{moved['from']} → v{moved['to']}")
    return "; ".join(parts) or "no change"


def _history_table(name: str, events: list[Any], title: str) -> Any:
    from rich.table import Table

    from triptych.cli import output

    table = Table(title=title, title_justify="left")
    for column in ("rev", "time", "action", "by", "change", "reason"):
        table.add_column(column, justify="right" if column == "rev" else "left")
    for e in events:
        table.add_row(
            str(e.revision),
            output.when(e.time),
            e.action,
            _esc(e.actor or "-"),
            _esc(_change(e)),
            _esc(e.reason or ""),
        )
    return table


def _print_one(d: Any, client: Any, *, events: list[Any] | None = None) -> None:
    from rich.table import Table

    from triptych.cli import output

    console = output.console()
    table = Table(title=f"deployment {_esc(d.name)} (revision {d.revision})", title_justify="left")
    for column in ("role", "address", "serves now", "traffic"):
        table.add_column(column)
    share = d.canary_weight if d.canary else 0
    table.add_row("primary", _esc(d.primary), _serves(d.primary, client), f"{100 - share}%")
    if d.canary:
        note = " (staged: no traffic)" if share == 0 else ""
        table.add_row("canary", _esc(d.canary), _serves(d.canary, client), f"{share}%{note}")
    if d.shadow:
        table.add_row("shadow", _esc(d.shadow), _serves(d.shadow, client), "copy of 100%")
    console.print(table)
    t = d.thresholds
    rate = f"{t.max_error_rate:.1%}" if t.max_error_rate is not None else "off"
    p99 = f"{t.max_p99_ms:g} ms" if t.max_p99_ms is not None else "off"
    console.print(
        f"[dim]rollback when the canary's error rate > {rate} (and the primary's), "
        f"p99 > {p99}, after {t.min_requests} requests[/]"
    )
    if events:
        console.print(_history_table(d.name, events, "recent changes"))


def _print_result(d: Any, json_out: bool, message: str) -> None:
    from triptych.cli import output

    if json_out:
        output.print_json(_dict(d))
        return
    output.console().print(f"{message} (revision {d.revision})")


@app.command()
def create(
    name: str = typer.Argument(..., help="Deployment name (letters, digits, '_', '.', '-')."),
    model: str = typer.Option(..., "--model", "-m", help="Primary: models:/NAME@alias, …"),
    canary: str = typer.Option(None, "--canary", help="Canary model address."),
    weight: int = typer.Option(0, "--weight", "-w", help="Percent of requests to the canary."),
    shadow: str = typer.Option(None, "--shadow", help="Model scoring a copy of each request."),
    max_error_rate: float = typer.Option(
        0.05, "--max-error-rate", help="Roll back above this canary error rate (0-1)."
    ),
    max_p99_ms: float = typer.Option(
        None, "--max-p99-ms", help="Roll back above this canary p99 latency (ms)."
    ),
    min_requests: int = typer.Option(
        50, "--min-requests", help="Canary requests before any automatic decision."
    ),
    reason: str = _REASON,
    json_out: bool = _JSON,
) -> None:
    """Create a deployment: a primary model, optionally a canary and a shadow."""
    from triptych import deployments
    from triptych.store.entities import Thresholds

    d = deployments.create(
        name, model, canary=canary, weight=weight, shadow=shadow, reason=reason,
        thresholds=Thresholds(max_error_rate, max_p99_ms, min_requests), client=_client(),
    )  # fmt: skip
    _print_result(d, json_out, f"created {d.uri}: {d.primary}")


@app.command("list")
def list_(json_out: bool = _JSON) -> None:
    """Every deployment with its models and canary share."""
    from triptych import deployments
    from triptych.cli import output

    found = deployments.list(client=_client())
    if json_out:
        output.print_json([_dict(d) for d in found])
        return
    console = output.console()
    if not found:
        console.print("no deployments yet: triptych deploy create NAME --model models:/NAME@alias")
        return
    from rich.table import Table

    table = Table()
    for column in ("name", "primary", "canary", "weight", "shadow", "rev", "updated"):
        table.add_column(column, justify="right" if column in ("weight", "rev") else "left")
    for d in found:
        table.add_row(
            _esc(d.name),
            _esc(d.primary),
            _esc(d.canary or "-"),
            f"{d.canary_weight}%" if d.canary else "-",
            _esc(d.shadow or "-"),
            str(d.revision),
            output.when(d.updated_at),
        )
    console.print(table)


@app.command()
def show(
    name: str = typer.Argument(..., help="Deployment name or deployments:/NAME."),
    json_out: bool = _JSON,
) -> None:
    """A deployment: its models, what each serves now, thresholds and recent changes."""
    from triptych import deployments
    from triptych.cli import output

    client = _client()
    d = deployments.get(name, client=client)
    events = deployments.history(d.name, limit=5, client=client)
    if json_out:
        from triptych.errors import TriptychError

        targets: dict[str, Any] = {}
        for role, address in (("primary", d.primary), ("canary", d.canary), ("shadow", d.shadow)):
            if not address:
                continue
            try:
                t = deployments.target(address, client=client)
            except TriptychError as e:  # e.g. a version deleted since: say so, keep going
                targets[role] = {"error": e.message}
                continue
            targets[role] = {
                "source": t.source,
                "model_name": t.model_name,
                "model_version": t.model_version,
            }
        output.print_json(
            {**_dict(d), "serves": targets, "recent": [_event_dict(e) for e in events]}
        )
        return
    _print_one(d, client, events=events)


@app.command()
def canary(
    name: str = typer.Argument(..., help="Deployment name."),
    model: str = typer.Argument(None, help="Canary model address (omit with --clear)."),
    weight: int = typer.Option(None, "--weight", "-w", help="Percent of requests (0-100)."),
    clear: bool = typer.Option(False, "--clear", help="Remove the canary."),
    reason: str = _REASON,
    json_out: bool = _JSON,
) -> None:
    """Set the canary and its share of requests, or remove it with --clear."""
    from triptych import deployments
    from triptych.errors import InvalidInput

    if clear == (model is not None):
        raise InvalidInput(
            "give either a canary model address or --clear",
            hint=f"e.g. triptych deploy canary {name} models:/NAME@challenger --weight 10",
        )
    if clear and weight:
        raise InvalidInput("--clear takes no --weight")
    if not clear and weight is None:
        raise InvalidInput(
            "say how much traffic the canary takes", hint="--weight 10 (percent; 0 stages it)"
        )
    d = deployments.set_canary(name, model, weight or 0, reason=reason, client=_client())
    said = f"canary {d.canary} takes {d.canary_weight}%" if d.canary else "canary removed"
    _print_result(d, json_out, f"{d.uri}: {said}")


@app.command()
def shadow(
    name: str = typer.Argument(..., help="Deployment name."),
    model: str = typer.Argument(None, help="Shadow model address (omit with --clear)."),
    clear: bool = typer.Option(False, "--clear", help="Stop shadowing."),
    reason: str = _REASON,
    json_out: bool = _JSON,
) -> None:
    """Score a copy of every request with another model, off the response path."""
    from triptych import deployments
    from triptych.errors import InvalidInput

    if clear == (model is not None):
        raise InvalidInput("give either a shadow model address or --clear")
    d = deployments.set_shadow(name, model, reason=reason, client=_client())
    _print_result(d, json_out, f"{d.uri}: shadow {d.shadow or 'removed'}")


@app.command()
def promote(
    name: str = typer.Argument(..., help="Deployment name."),
    reason: str = _REASON,
    json_out: bool = _JSON,
) -> None:
    """Make the canary the primary (moving the primary's alias when both are aliases)."""
    from triptych import deployments

    client = _client()
    d = deployments.promote(name, reason=reason, client=client)
    moved = (deployments.history(d.name, limit=1, client=client)[-1].details or {}).get("alias")
    said = (
        f"{moved['model']}@{moved['alias']} moved v{moved['from']} → v{moved['to']}"
        if moved
        else f"primary is now {d.primary}"
    )
    _print_result(d, json_out, f"promoted {d.uri}: {said}")


@app.command()
def rollback(
    name: str = typer.Argument(..., help="Deployment name."),
    reason: str = _REASON,
    json_out: bool = _JSON,
) -> None:
    """Undo the latest change (and move back an alias its promotion moved)."""
    from triptych import deployments

    client = _client()
    d = deployments.rollback(name, reason=reason, client=client)
    undone = deployments.history(d.name, limit=1, client=client)[-1]
    _print_result(
        d, json_out, f"rolled back {d.uri} (undid revision {(undone.details or {}).get('undoes')})"
    )


@app.command()
def delete(
    name: str = typer.Argument(..., help="Deployment name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str = _REASON,
) -> None:
    """Delete a deployment; its audit trail stays."""
    from triptych import deployments
    from triptych.cli import output

    client = _client()
    d = deployments.get(name, client=client)  # NotFound before asking
    if not yes:
        typer.confirm(f"delete {d.uri} (serving {d.primary})?", abort=True)
    deployments.delete(d.name, reason=reason, client=client)
    output.console().print(f"deleted {d.uri} (its history stays: triptych deploy history {d.name})")


@app.command()
def history(
    name: str = typer.Argument(..., help="Deployment name (also a deleted one)."),
    limit: int = typer.Option(None, "--limit", "-n", help="Only the latest N changes."),
    json_out: bool = _JSON,
) -> None:
    """The audit trail: every change, who made it, when and why."""
    from triptych import deployments
    from triptych.cli import output

    n = deployments.name_of(name)
    events = deployments.history(n, limit=limit, client=_client())
    if json_out:
        output.print_json([_event_dict(e) for e in events])
        return
    output.console().print(_history_table(n, events, f"history of deployments:/{_esc(n)}"))
