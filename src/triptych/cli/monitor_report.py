"""``triptych monitor report``: the self-contained HTML report of a deployment's monitoring."""

from __future__ import annotations

from pathlib import Path

import typer

from triptych.cli.monitor import _NAME, _client, app


@app.command()
def report(
    name: str = _NAME,
    html: Path | None = typer.Option(
        None, "--html", help="Write the report to this file (one HTML file, opens offline)."
    ),
    window: str | None = typer.Option(
        None, "--window", help="Performance window, e.g. 1h (default: the monitor's window)."
    ),
    start: str | None = typer.Option(
        None, "--start", help="Only checks ending after this time (ISO 8601; local without a zone)."
    ),
    end: str | None = typer.Option(
        None, "--end", help="Only checks ending at or before this time (ISO 8601)."
    ),
    last: int | None = typer.Option(None, "--last", min=1, help="Only the latest N checks."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the report's data as JSON (with --html: as well)."
    ),
) -> None:
    """Write the monitoring report of a deployment: one HTML file with its distributions, drift
    and performance over time, and alerts."""
    from triptych.cli import output
    from triptych.errors import InvalidInput
    from triptych.models.registry import parse_when
    from triptych.monitoring import report as report_module

    if html is None and not json_out:
        raise InvalidInput(
            "say where the report goes", hint="pass --html report.html, or --json for its data"
        )
    start_ms = int(parse_when(start).timestamp() * 1000) if start else None
    end_ms = int(parse_when(end).timestamp() * 1000) if end else None
    if html is not None:
        report_module.check_path(html)  # before any work: a bad path fails at once
    data = report_module.gather(
        name, window=window, start_ms=start_ms, end_ms=end_ms, last=last, client=_client()
    )
    if json_out:
        output.print_json(data)
    if html is not None:
        written = report_module.write(name, html, data=data)
        # stdout stays valid JSON with --json: the path goes to stderr then
        output.console(stderr=json_out).print(f"report written to {output.escape(str(written))}")
