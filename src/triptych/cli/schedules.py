"""``triptych pipeline schedule/schedules/unschedule/pause/resume/firings`` and
``triptych scheduler``."""

from __future__ import annotations

import time
from typing import Any

import typer


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    from triptych.errors import InvalidInput

    found: dict[str, str] = {}
    for pair in values or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{flag} {pair!r} is not key=value", hint=f"e.g. {flag} alpha=0.5")
        found[key.strip()] = value
    return found


def _firing_dict(f: Any) -> dict[str, Any]:
    return {
        "schedule": f.schedule,
        "occurrence": f.occurrence,
        "status": f.status,
        "run_id": f.run_id,
        "error": f.error,
        "fired_at": f.fired_at,
        "finished_at": f.finished_at,
        "fired_by": f.fired_by,
    }


def _next_due(s: Any, now: float) -> int | None:
    """When a cron schedule fires next (ms), None for triggers and paused schedules."""
    from triptych.pipelines import schedules

    if s.kind != "cron" or not s.enabled:
        return None
    at = schedules.next_cron_time(s.spec, now)
    return None if at is None else int(at.timestamp() * 1000)


def _schedule_dict(s: Any, now: float) -> dict[str, Any]:
    return {
        "name": s.name,
        "pipeline": s.pipeline,
        "workdir": s.workdir,
        "trigger": {"kind": s.kind, "spec": s.spec},
        "params": dict(s.params),
        "executor": s.executor,
        "enabled": s.enabled,
        "created_at": s.created_at,
        "created_by": s.created_by,
        "active_since": s.active_since,
        "next_due": _next_due(s, now),
        "last_firing": _firing_dict(s.last_firing) if s.last_firing else None,
    }


def _firing_line(f: Any) -> str:
    from triptych.cli import output

    text = f"{output.escape(f.schedule)} [dim]{output.escape(f.occurrence)}[/] "
    text += output.status(f.status)
    if f.run_id:
        text += f" run {f.run_id}"
    if f.error:
        text += f" [red]{output.escape(f.error.strip().splitlines()[-1])}[/]"
    return text


def schedule(
    pipeline: str = typer.Argument(..., help="The pipeline: FILE or FILE:function."),
    name: str = typer.Option(None, "--name", "-n", help="Schedule name (default: the file's)."),
    cron: str = typer.Option(None, "--cron", help='Cron expression in UTC, e.g. "0 3 * * *".'),
    on_dataset: str = typer.Option(None, "--on-dataset", help="Run on each new dataset version."),
    on_alert: str = typer.Option(None, "--on-alert", help="Run when this alert fires ('*': any)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Pipeline parameter key=value."),
    executor: str = typer.Option("local", "--executor", help="local, ray or ray://host:port."),
    workdir: str = typer.Option(
        None, "--workdir", help="Folder to run in (default: here); a relative PIPELINE is in it."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a pipeline on a cron schedule, on new data, or on an alert (see: triptych scheduler)."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    made = schedules.create(
        name,
        pipeline,
        cron=cron,
        on_dataset=on_dataset,
        on_alert=on_alert,
        params=_pairs(param, "--param"),
        executor=executor,
        workdir=workdir,
        client=_client(),
    )
    if json_out:
        output.print_json(_schedule_dict(made, time.time()))
        return
    console = output.console()
    console.print(
        f"scheduled {output.escape(made.name)}: {output.escape(made.pipeline)} on "
        f"{output.escape(schedules.describe_trigger(made))}"
    )
    console.print(
        "[dim]`triptych scheduler` fires it; list schedules: triptych pipeline schedules[/]"
    )


def list_schedules(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Schedules with their trigger, next due time and last firing."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    found = schedules.list(client=_client())
    now = time.time()
    if json_out:
        output.print_json([_schedule_dict(s, now) for s in found])
        return
    console = output.console()
    if not found:
        console.print('no schedules yet: triptych pipeline schedule FILE --cron "0 3 * * *"')
        return
    from rich.table import Table

    table = Table()
    for column in ("name", "pipeline", "trigger", "next", "last firing", "status", "run"):
        table.add_column(column)
    for s in found:
        last = s.last_firing
        if not s.enabled:
            upcoming = "[yellow]paused[/]"
        elif s.kind == "cron":
            upcoming = output.when(_next_due(s, now))
        else:
            upcoming = "on trigger"
        table.add_row(
            output.escape(s.name),
            output.escape(s.pipeline),
            output.escape(schedules.describe_trigger(s)),
            upcoming,
            output.escape(last.occurrence) if last else "-",
            output.status(last.status) if last else "-",
            (last.run_id or "-") if last else "-",
        )
    console.print(table)


def unschedule(name: str = typer.Argument(..., help="Schedule name.")) -> None:
    """Remove a schedule and its firing history (runs it started are kept)."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    schedules.delete(name, client=_client())
    output.console().print(f"removed schedule {output.escape(name)}")


def pause(name: str = typer.Argument(..., help="Schedule name.")) -> None:
    """Pause a schedule: it fires nothing until resumed."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    schedules.pause(name, client=_client())
    output.console().print(f"paused schedule {output.escape(name)}")


def resume(name: str = typer.Argument(..., help="Schedule name.")) -> None:
    """Resume a paused schedule; what happened while it was paused does not fire."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    schedules.resume(name, client=_client())
    output.console().print(f"resumed schedule {output.escape(name)}")


def firings(
    name: str = typer.Argument(..., help="Schedule name."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many, newest first."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The latest firings of a schedule: occurrence, outcome, run."""
    from triptych.cli import output
    from triptych.pipelines import schedules

    found = schedules.firings(name, limit, client=_client())
    if json_out:
        output.print_json([_firing_dict(f) for f in found])
        return
    from rich.table import Table

    table = Table(title=f"schedule {output.escape(name)}", title_justify="left")
    for column in ("occurrence", "fired", "status", "run", "by", "error"):
        table.add_column(column)
    for f in found:
        table.add_row(
            output.escape(f.occurrence),
            output.when(f.fired_at),
            output.status(f.status),
            f.run_id or "-",
            output.escape(f.fired_by or "-"),
            output.escape((f.error or "").strip().splitlines()[-1] if f.error else ""),
        )
    output.console().print(table)


def register(app: typer.Typer) -> None:
    """Add the schedule commands to the ``pipeline`` group."""
    app.command("schedule")(schedule)
    app.command("schedules")(list_schedules)
    app.command("unschedule")(unschedule)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("firings")(firings)


def scheduler(
    once: bool = typer.Option(
        False, "--once", help="One tick: fire what is due, wait for it, exit (for system cron)."
    ),
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between ticks."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (lines, without --once)."),
) -> None:
    """Run due schedules and triggers. Any number of schedulers may share a store: each
    occurrence fires once."""
    import json
    import threading

    from triptych.cli import output
    from triptych.pipelines.scheduler import Scheduler

    if once:
        sched = Scheduler(_client())
        sched.tick()
        ended = sorted(sched.wait(), key=lambda f: (f.schedule, f.occurrence))
        if json_out:
            output.print_json([_firing_dict(f) for f in ended])
            return
        console = output.console()
        if not ended:
            console.print("nothing due")
        for f in ended:
            console.print(_firing_line(f))
        return

    lock = threading.Lock()
    console = output.console()

    def report(f: Any) -> None:
        with lock:
            if json_out:
                print(json.dumps(_firing_dict(f)), flush=True)
            else:
                console.print(_firing_line(f))

    sched = Scheduler(_client(), on_fire=report, on_finish=report)
    from triptych.uris import redact

    output.console(stderr=True).print(
        f"scheduler {sched.identity} on {output.escape(redact(sched.client.settings.tracking_uri))}"
        f", every {interval:g}s; Ctrl-C to stop"
    )
    sched.run(interval)
