"""``triptych monitor check`` and ``triptych monitor status``: what the monitor sees now."""

from __future__ import annotations

from typing import Any

import typer

from triptych.cli.monitor import _JSON, _NAME, _client, _deployment, app

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], top: float | None = None) -> str:
    """A one-line chart of ``values`` (``·`` where a value is missing)."""
    known = [v for v in values if v is not None]
    high = top if top is not None else max(known, default=0.0)
    out = []
    for v in values:
        if v is None:
            out.append("·")
        else:
            share = min(max(v / high, 0.0), 1.0) if high > 0 else 0.0
            out.append(_BARS[round(share * (len(_BARS) - 1))])
    return "".join(out)


def _verdict(drifted: bool) -> str:
    return "[red]drifted[/]" if drifted else "[green]ok[/]"


@app.command()
def check(
    name: str = _NAME,
    window: str | None = typer.Option(
        None, "--window", help="Look back this far instead of the monitor's window (15m, 1h)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Compute only: raise no alert and record nothing."
    ),
    json_out: bool = _JSON,
) -> None:
    """Check the latest window of live traffic against the reference: drift per feature and
    of the predictions, live performance from labels; raise alerts for breached thresholds."""
    import time

    from rich.table import Table

    from triptych.cli import output
    from triptych.monitoring import checks
    from triptych.monitoring.monitors import seconds

    end = int(time.time() * 1000)
    start = end - seconds(window) * 1000 if window else None
    result = checks.run(
        _deployment(name),
        start_ms=start,
        end_ms=end,
        alerts=not dry_run,
        record=not dry_run,
        client=_client(),
    )
    if json_out:
        output.print_json(result.to_dict())
        return
    console = output.console()
    esc = output.escape
    console.print(
        f"[bold]{esc(result.deployment)}[/]  {output.when(result.start_ms)} → "
        f"{output.when(result.end_ms)}  {result.rows} scored row(s), model version "
        f"{result.model_version if result.model_version is not None else '-'}, reference "
        f"{esc(result.reference)}"
    )
    d = result.drift
    if d is not None:
        table = Table(title=f"drift: {d.drifted_share:.0%} of features")
        for column in ("column", "psi", "ks", "wasserstein", "verdict", "why"):
            table.add_column(column, justify="right" if column in ("psi", "ks") else "left")
        for col in d.columns.values():
            table.add_row(
                esc(col.name) + (" (model output)" if col.is_prediction else ""),
                output.number(col.psi),
                output.number(col.ks_statistic),
                output.number(col.wasserstein),
                _verdict(col.drifted),
                esc("; ".join(col.reasons)),
            )
        console.print(table)
        console.print(
            f"dataset: {_verdict(d.drifted)}; predictions: {_verdict(bool(d.prediction_drifted))}"
        )
    p = result.performance
    if p is not None:
        decay = "-" if p["decay"] is None else f"{p['decay']:+.1%}"
        console.print(
            f"performance: {p['n_labelled']} labelled row(s), {p['metric']} decay {decay} vs "
            f"offline (limit {'off' if p['max_decay'] is None else format(p['max_decay'], '.0%')})"
            + (" [red]breached[/]" if p["breached"] else "")
        )
    for r in result.alerts:
        console.print(
            f"alert {r.alert.id} {r.outcome}: {esc('[' + r.alert.severity + ']')} "
            f"{esc(r.alert.message)}"
        )
    for note in result.notes:
        console.print(f"note: {esc(note)}")
    if dry_run:
        console.print("[dim]dry run: no alert raised, nothing recorded[/]")


def status_of(name: str, client: Any, last: int = 24) -> dict[str, Any]:
    """Everything ``status`` shows for one monitor, as JSON-able data."""
    from dataclasses import asdict

    from triptych.monitoring import alerts, checks, loop
    from triptych.monitoring.policy import followed_alias

    monitor = client.store.get_monitor(name)
    found = checks.history(name, limit=last, client=client)
    latest = found[-1] if found else None
    active = [alerts.to_dict(a) for a in alerts.list(name, client=client) if a.status != "resolved"]
    state: dict[str, Any] = {"policy": None}
    if monitor.policy is not None:
        state["policy"] = {**asdict(monitor.policy), "triggers": list(monitor.policy.triggers)}
        try:
            model, alias = followed_alias(name, client=client)
            moved = loop.unjudged_move(name, model, alias, client=client)
            done = loop.events(name, model, client=client)
            state["watching"] = (
                {"version": moved.version, "previous": moved.previous_version, "since": moved.time}
                if moved is not None
                else None
            )
            state["last_actions"] = [
                {"time": e.time, "action": e.action, "version": e.version, "reason": e.reason}
                for e in done[-5:]
            ]
        except Exception as e:
            state["error"] = str(e)
    return {
        "name": name,
        "reference": monitor.reference,
        "window_s": monitor.window_s,
        "checks": [
            {
                "end_ms": h["end_ms"],
                "rows": h["rows"],
                "drifted": h["drifted"],
                "drifted_share": (h["drift"] or {}).get("drifted_share"),
                "prediction_drifted": (h["drift"] or {}).get("prediction_drifted"),
                "decay": (h["performance"] or {}).get("decay"),
                "decayed": h["decayed"],
            }
            for h in found
        ],
        "latest": latest,
        "active_alerts": active,
        "loop": state,
    }


@app.command()
def status(
    name: str | None = typer.Argument(None, help="One deployment (default: every monitor)."),
    last: int = typer.Option(24, "--last", min=1, help="Checks to chart."),
    json_out: bool = _JSON,
) -> None:
    """Where each monitored deployment stands: the latest verdicts, drift and decay over the
    last checks, active alerts, and what the closed loop did and is watching."""
    from triptych.cli import output
    from triptych.monitoring import monitors

    client = _client()
    names = [_deployment(name)] if name else [m.name for m in monitors.list(client=client)]
    data = [status_of(n, client, last) for n in names]
    if json_out:
        output.print_json(data if name is None else data[0])
        return
    console = output.console()
    if not data:
        console.print("no monitors yet: triptych monitor create DEPLOYMENT")
        return
    esc = output.escape
    for s in data:
        console.print(f"[bold]{esc(s['name'])}[/]  reference {esc(s['reference'])}")
        latest = s["latest"]
        if latest is None:
            console.print("  no check yet: triptych monitor check " + esc(s["name"]))
        else:
            drift = latest["drift"] or {}
            cols = [
                c
                for c, v in (drift.get("columns") or {}).items()
                if v["drifted"] and not v["is_prediction"]
            ]
            perf = latest["performance"] or {}
            decay = perf.get("decay")
            features = [v for v in (drift.get("columns") or {}).values() if not v["is_prediction"]]
            console.print(
                f"  last check {output.when(latest['end_ms'])}: {latest['rows']} row(s); "
                f"{len(cols)} of {len(features)} features drifted"
                + (f" ({esc(', '.join(cols))})" if cols else "")
                + f", dataset {_verdict(latest['drifted'])}"
                + f"; predictions {_verdict(bool(drift.get('prediction_drifted')))}"
                + ("" if decay is None else f"; {perf['metric']} decay {decay:+.1%}")
            )
            shares = [c["drifted_share"] for c in s["checks"]]
            decays = [c["decay"] for c in s["checks"]]
            console.print(
                f"  drifted share {sparkline(shares, 1.0)}   decay "
                f"{sparkline([max(d, 0.0) if d is not None else None for d in decays])}"
                f"   ({len(s['checks'])} check(s))"
            )
        alerts_ = s["active_alerts"]
        console.print(
            f"  active alerts: {len(alerts_)}"
            + "".join(
                f"\n    {esc('[' + a['severity'] + ']')} {esc(a['message'])}" for a in alerts_[:5]
            )
        )
        state = s["loop"]
        if state["policy"] is None:
            console.print("  loop: off (triptych monitor policy NAME --pipeline FILE)")
            continue
        policy = state["policy"]
        console.print(f"  loop: on {', '.join(policy['triggers'])} → {esc(policy['pipeline'])}")
        if state.get("error"):
            console.print(f"    [red]{esc(state['error'])}[/]")
        if state.get("watching"):
            w = state["watching"]
            console.print(
                f"    watching v{w['version']} (replaced v{w['previous']} "
                f"{output.when(w['since'], short=True)})"
            )
        for e in state.get("last_actions", []):
            console.print(
                f"    {output.when(e['time'], short=True)} {e['action']}: {esc(e['reason'] or '')}"
            )
