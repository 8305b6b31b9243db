"""``triptych monitor policy`` and ``triptych monitor loop``: the closed retraining loop."""

from __future__ import annotations

from typing import Any

import typer

from triptych.cli.monitor import _JSON, _NAME, _client, _deployment, app


def _policy_dict(p: Any) -> dict[str, Any] | None:
    from dataclasses import asdict

    if p is None:
        return None
    return {**asdict(p), "triggers": list(p.triggers), "params": dict(p.params)}


@app.command()
def policy(
    name: str = _NAME,
    pipeline: str | None = typer.Option(
        None, "--pipeline", help="The training pipeline file (FILE or FILE:function)."
    ),
    trigger: list[str] | None = typer.Option(
        None,
        "--trigger",
        help="drift, performance or schedule (repeatable; default the first two).",
    ),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Cron (UTC) for the schedule trigger, e.g. '0 3 * * 1'."
    ),
    param: list[str] | None = typer.Option(
        None, "-p", "--param", help="Pipeline parameter override step.key=value (repeatable)."
    ),
    data_param: str = typer.Option(
        "ingest.source",
        "--data-param",
        help="Parameter that receives the reference + live-labels dataset; 'off' for none.",
    ),
    target: str = typer.Option("target", "--target", help="The label column of the reference."),
    min_labels: int = typer.Option(
        50, "--min-labels", min=1, help="Labelled live rows before a new model is judged."
    ),
    tolerance: float = typer.Option(
        0.05, "--tolerance", min=0.0, help="Roll back when the new model is this much worse."
    ),
    retrain_cooldown: str = typer.Option(
        "1h", "--retrain-cooldown", help="No second retrain within this (e.g. 30m, 1d)."
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove the policy (the loop stops)."),
    json_out: bool = _JSON,
) -> None:
    """Set (or show, or --clear) the closed-loop policy of a monitored deployment."""
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.monitoring import monitors
    from triptych.monitoring import policy as policies

    client = _client()
    deployment = _deployment(name)
    if clear:
        monitor = policies.clear_policy(deployment, client=client)
    elif pipeline is None:
        if trigger or schedule or param:
            raise InvalidInput("a policy needs its pipeline", hint="add --pipeline FILE")
        monitor = monitors.get(deployment, client=client)
    else:
        monitor = policies.set_policy(
            deployment,
            pipeline=pipeline,
            triggers=trigger or ("drift", "performance"),
            schedule=schedule,
            params=policies.parse_params(param or ()),
            data_param=None if data_param.lower() in ("off", "none", "") else data_param,
            target=target,
            min_labels=min_labels,
            tolerance=tolerance,
            retrain_cooldown=retrain_cooldown,
            client=client,
        )
    p = monitor.policy
    if json_out:
        output.print_json({"deployment": monitor.name, "policy": _policy_dict(p)})
        return
    console = output.console()
    esc = output.escape
    if p is None:
        console.print(f"{esc(monitor.name)}: no loop policy (checks and alerts only)")
        return
    console.print(f"[bold]{esc(monitor.name)}[/] loop policy")
    console.print(
        f"  on {', '.join(p.triggers)}" + (f" (cron {esc(p.schedule)})" if p.schedule else "")
    )
    console.print(
        f"  run {esc(p.pipeline)}"
        + "".join(f" -p {esc(k)}={esc(str(v))}" for k, v in p.params.items())
    )
    if p.data_param:
        console.print(
            f"  with reference + live labels as {esc(p.data_param)} (label column {esc(p.target)})"
        )
    console.print(
        f"  judge a new model on {p.min_labels} labelled live rows; roll back beyond "
        f"{p.tolerance:.0%} worse; retrain at most every {p.retrain_cooldown_s}s"
    )


def _print(decision: Any, json_out: bool) -> None:
    from triptych.cli import output

    if json_out:
        output.print_json(decision.to_dict())
        return
    colour = {"retrain": "yellow", "rollback": "red", "confirm": "green", "watch": "cyan"}
    c = colour.get(decision.action, "white")
    prefix = "[dim](dry run)[/] " if decision.dry_run else ""
    output.console().print(
        f"{prefix}[{c}]{decision.action}[/] "
        f"{output.escape(decision.deployment)}: {output.escape(decision.reason)}"
    )


@app.command("loop")
def loop_(
    name: str = _NAME,
    once: bool = typer.Option(False, "--once", help="One tick, then exit."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what the loop would do; change and record nothing."
    ),
    interval: float = typer.Option(60.0, "--interval", min=1.0, help="Seconds between ticks."),
    max_ticks: int | None = typer.Option(None, "--max-ticks", min=1, help="Stop after N ticks."),
    json_out: bool = _JSON,
) -> None:
    """Run the closed loop: check → retrain on drift/decay/schedule → the gate promotes →
    watch the new champion on live labels → roll back if it does worse."""
    from triptych.monitoring import loop

    client = _client()
    deployment = _deployment(name)
    if once or dry_run:
        _print(loop.tick(deployment, dry_run=dry_run, client=client), json_out)
        return
    loop.run_forever(
        deployment,
        interval_s=interval,
        max_ticks=max_ticks,
        client=client,
        on_decision=lambda d: _print(d, json_out),
    )
