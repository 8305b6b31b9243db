"""``triptych monitor …``: the monitor of a deployment and its alerts."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    help="Monitors of deployments (reference data, window, thresholds, webhooks) and alerts.",
    no_args_is_help=True,
)

_JSON = typer.Option(False, "--json", help="Print JSON.")
_NAME = typer.Argument(..., help="Deployment name or deployments:/NAME.")


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


def _thresholds(items: list[str] | None) -> dict[str, float | None] | None:
    """``psi=0.25`` … (``off`` switches a check off)."""
    if not items:
        return None
    from triptych.errors import InvalidInput

    found: dict[str, float | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"invalid threshold {item!r}", hint="use NAME=VALUE, e.g. psi=0.25")
        try:
            found[key.strip()] = None if value.strip().lower() in ("off", "none") else float(value)
        except ValueError:
            raise InvalidInput(
                f"threshold {key.strip()} needs a number or 'off', got {value!r}"
            ) from None
    return found


def _redacted(urls: tuple[str, ...]) -> list[str]:
    from triptych.monitoring.webhooks import redact_url

    return [redact_url(u) for u in urls]


def _dict(m: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "name": m.name,
        "reference": m.reference,
        "window_s": m.window_s,
        "thresholds": asdict(m.thresholds),
        "webhooks": _redacted(m.webhooks),  # webhook paths often hold the secret
        "cooldown_s": m.cooldown_s,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "created_by": m.created_by,
    }


def _seconds(s: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _thresholds_text(t: Any) -> str:
    from dataclasses import asdict

    return ", ".join(f"{k}={'off' if v is None else v}" for k, v in asdict(t).items())


@app.command()
def create(
    name: str = _NAME,
    reference: str | None = typer.Option(
        None, "--reference", help="datasets:/NAME@VERSION (default: the model's training data)."
    ),
    window: str = typer.Option("1h", "--window", help="Window of live data, e.g. 15m, 1h, 1d."),
    threshold: list[str] | None = typer.Option(
        None,
        "--threshold",
        help="NAME=VALUE or NAME=off: psi, ks, wasserstein, drift_share, max_decay (repeatable).",
    ),
    webhook: list[str] | None = typer.Option(
        None, "--webhook", help="http(s) URL to POST new alerts to (repeatable)."
    ),
    cooldown: str = typer.Option(
        "1h", "--cooldown", help="Quiet period after an alert is resolved, e.g. 30m."
    ),
    json_out: bool = _JSON,
) -> None:
    """Create the monitor of a deployment."""
    from triptych.cli import output
    from triptych.monitoring import monitors

    m = monitors.create(
        name, reference=reference, window=window, thresholds=_thresholds(threshold),
        webhooks=webhook or (), cooldown=cooldown, client=_client(),
    )  # fmt: skip
    if json_out:
        output.print_json(_dict(m))
        return
    output.console().print(
        f"monitor [bold]{output.escape(m.name)}[/] created: reference "
        f"{output.escape(m.reference)}, window {_seconds(m.window_s)}"
    )


@app.command("list")
def list_(json_out: bool = _JSON) -> None:
    """Every monitor with its reference, window and open alerts."""
    from triptych.cli import output
    from triptych.monitoring import alerts, monitors

    client = _client()
    found = monitors.list(client=client)
    if json_out:
        output.print_json([_dict(m) for m in found])
        return
    console = output.console()
    if not found:
        console.print("no monitors yet: triptych monitor create DEPLOYMENT")
        return
    from rich.table import Table

    table = Table()
    for column in ("name", "reference", "window", "cooldown", "webhooks", "active alerts"):
        table.add_column(column)
    for m in found:
        active = [a for a in alerts.list(m.name, client=client) if a.status != "resolved"]
        table.add_row(
            output.escape(m.name), output.escape(m.reference), _seconds(m.window_s),
            _seconds(m.cooldown_s), str(len(m.webhooks)),
            f"[red]{len(active)}[/]" if active else "0",
        )  # fmt: skip
    console.print(table)


@app.command()
def show(name: str = _NAME, json_out: bool = _JSON) -> None:
    """A monitor: its settings and recent alerts."""
    from triptych.cli import output
    from triptych.monitoring import alerts, monitors

    client = _client()
    m = monitors.get(name, client=client)
    recent = alerts.list(m.name, limit=10, client=client)
    if json_out:
        output.print_json({**_dict(m), "alerts": [alerts.to_dict(a) for a in recent]})
        return
    console = output.console()
    esc = output.escape
    console.print(f"[bold]{esc(m.name)}[/]  reference {esc(m.reference)}")
    console.print(f"window {_seconds(m.window_s)}, cooldown {_seconds(m.cooldown_s)}")
    console.print(f"thresholds: {_thresholds_text(m.thresholds)}")
    for url in _redacted(m.webhooks):
        console.print(f"webhook {esc(url)}")
    if recent:
        console.print(_alert_table(recent))
    else:
        console.print("no alerts")


@app.command()
def delete(name: str = _NAME) -> None:
    """Delete a monitor (its alerts stay)."""
    from triptych.cli import output
    from triptych.monitoring import monitors

    monitors.delete(name, client=_client())
    output.console().print(f"monitor {output.escape(name)} deleted")


def _alert_table(found: list[Any]) -> Any:
    from rich.table import Table

    from triptych.cli import output

    colour = {"critical": "red", "warning": "yellow", "info": "cyan"}
    table = Table()
    for column in ("id", "monitor", "kind", "key", "severity", "status", "count", "last seen",
                   "message"):  # fmt: skip
        table.add_column(column, justify="right" if column in ("id", "count") else "left")
    for a in found:
        c = colour.get(a.severity, "white")
        table.add_row(
            str(a.id), output.escape(a.monitor), output.escape(a.kind), output.escape(a.key),
            f"[{c}]{a.severity}[/]", a.status, str(a.count), output.when(a.last_seen, short=True),
            output.escape(a.message),
        )  # fmt: skip
    return table


@app.command("alerts")
def alerts_(
    name: str | None = typer.Argument(None, help="Only this deployment's alerts."),
    status: str | None = typer.Option(None, "--status", help="open, acknowledged or resolved."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    json_out: bool = _JSON,
) -> None:
    """Alerts, newest first."""
    from triptych.cli import output
    from triptych.monitoring import alerts

    found = alerts.list(name, status=status, limit=limit, client=_client())
    if json_out:
        output.print_json([alerts.to_dict(a) for a in found])
        return
    console = output.console()
    if not found:
        console.print("no alerts")
        return
    console.print(_alert_table(found))


@app.command()
def ack(
    alert_id: int = typer.Argument(..., help="Alert id (see triptych monitor alerts)."),
    resolve: bool = typer.Option(False, "--resolve", help="Resolve it (close it) instead."),
    json_out: bool = _JSON,
) -> None:
    """Acknowledge an alert (it stays active), or resolve it with --resolve."""
    from triptych.cli import output
    from triptych.monitoring import alerts

    change = alerts.resolve if resolve else alerts.acknowledge
    a = change(alert_id, client=_client())
    if json_out:
        output.print_json(alerts.to_dict(a))
        return
    output.console().print(f"alert {a.id} {a.status}")


@app.command()
def labels(
    name: str = _NAME,
    source: str = typer.Argument(..., help="CSV, TSV or Parquet file with request_id,label."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Store the good rows and list the bad ones (default: refuse)."
    ),
    json_out: bool = _JSON,
) -> None:
    """Add delayed labels (ground truth) for logged predictions of a deployment."""
    from pathlib import Path

    from triptych.cli import output
    from triptych.monitoring import labels as labels_module

    report = labels_module.add(
        _deployment(name), Path(source), skip_invalid=skip_invalid, client=_client()
    )
    if json_out:
        output.print_json(report.to_dict())
        return
    console = output.console()
    console.print(
        f"{report.received} label(s): {report.new} new, {report.corrections} correction(s), "
        f"{report.unchanged} unchanged, {report.duplicates} duplicate row(s), "
        f"{report.unmatched} with no logged prediction yet, {report.invalid_count} invalid"
    )
    for row, why in report.invalid:
        console.print(f"  row {row}: {output.escape(why)}")


@app.command()
def performance(
    name: str = _NAME,
    window: str = typer.Option("1h", "--window", help="Window length: 15m, 1h, 1d …"),
    json_out: bool = _JSON,
) -> None:
    """Live metrics per window and model version, from the labelled predictions, against
    each version's offline score."""
    from rich.table import Table

    from triptych.cli import output
    from triptych.monitoring import performance as performance_module

    perf = performance_module.over_time(_deployment(name), window=window, client=_client())
    if json_out:
        output.print_json(perf.to_dict())
        return
    console = output.console()
    data = perf.to_dict()
    if not data["windows"]:
        console.print(f"no labelled predictions for {perf.deployment} yet")
    else:
        columns = list(data["windows"][0])
        table = Table(title=f"{perf.deployment}: {perf.task}, window {window}")
        for c in columns:
            table.add_column(c, justify="left" if c in ("window_start", "variant") else "right")
        for row in data["windows"]:
            row = dict(row, window_start=output.when(row["window_start"]))
            table.add_row(
                *(
                    output.number(v) if isinstance(v, float) else output.escape(str(v))
                    for v in (row[c] for c in columns)
                )
            )
        console.print(table)
    for note in perf.notes:
        console.print(f"note: {output.escape(note)}")


def _deployment(name: str) -> str:
    from triptych.deployments.refs import name_of

    return name_of(name)


# Commands kept in their own modules register on ``app`` when imported (keeps this file small).
from triptych.cli import monitor_loop, monitor_report, monitor_views  # noqa: E402, F401
