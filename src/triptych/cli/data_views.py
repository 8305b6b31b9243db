"""Rendering for ``triptych data``: profile, version and check tables (rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOP_CATEGORIES = 3  # most frequent values shown for a non-numeric column in `data show`


def column_count(version: Any) -> int | None:
    """Columns of this version's own data (its profile; the schema is the dataset's)."""
    columns = (version.profile or {}).get("columns")
    return len(columns) if isinstance(columns, dict) else None


def tags_text(tags: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) if tags else "-"


def profile_table(profile: dict[str, Any]) -> Any:
    from rich.table import Table

    from triptych.cli import output
    from triptych.data.profile import sparkline

    table = Table(title="profile", title_justify="left", title_style="bold")
    table.add_column("column", no_wrap=True)
    table.add_column("dtype")
    for heading in ("count", "nulls", "mean", "std", "min", "max"):
        table.add_column(heading, justify="right")
    table.add_column("distribution")
    for name, col in profile.items():
        histogram = col.get("histogram")
        if histogram is not None:
            shape = f"[cyan]{sparkline(histogram.get('counts') or [])}[/]"
        elif col.get("top"):
            top = col["top"]
            shape = output.escape(
                ", ".join(f"{value} {count}" for value, count in top[:TOP_CATEGORIES])
            )
            more = col.get("distinct", len(top)) - min(len(top), TOP_CATEGORIES)
            if more > 0:
                shape += f" [dim](+{more} more)[/]"
        else:
            shape = ""
        table.add_row(
            output.escape(name),
            output.escape(str(col.get("dtype", "?"))),
            *[stat(col.get(key)) for key in ("count", "nulls", "mean", "std", "min", "max")],
            shape,
        )
    return table


def stat(value: Any) -> str:
    from triptych.cli import output

    if value is None:
        return "-"
    if isinstance(value, float):
        return output.number(value)
    return output.escape(str(value))


def versions_table(found: list[Any]) -> None:
    from rich.table import Table

    from triptych.cli import output

    table = Table()
    for column, justify in (
        ("version", "right"),
        ("rows", "right"),
        ("columns", "right"),
        ("size", "right"),
        ("digest", "left"),
        ("created", "left"),
        ("tags", "left"),
        ("description", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for v in found:
        columns = column_count(v)
        table.add_row(
            str(v.version),
            str(v.rows),
            str(columns) if columns is not None else "-",
            output.size(v.size),
            v.digest[:12],
            output.when(v.creation_time),
            output.escape(tags_text(v.tags)),
            output.escape(v.description or ""),
        )
    output.console().print(table)


def print_checks(results: list[Any], path: Path, reference: str) -> None:
    from rich.table import Table

    from triptych.cli import output

    console = output.console()
    table = Table(title=f"data checks of {output.escape(str(path))}", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("message")
    for r in results:
        verdict = "[green]passed[/]" if r.passed else "[bold red]FAILED[/]"
        table.add_row(r.name, verdict, output.escape(r.message))
    console.print(table)
    shift = next((r for r in results if r.name == "distribution_shift"), None)
    columns = (shift.details.get("columns") if shift else None) or {}
    if not columns:
        return
    drift = Table(
        title=f"distribution shift against {reference}",
        title_justify="left",
        title_style="bold",
    )
    for column in ("column", "kind", "psi", "ks p-value", "shifted"):
        drift.add_column(column, justify="right" if column in ("psi", "ks p-value") else "left")
    for column_name, d in columns.items():
        drift.add_row(
            output.escape(column_name),
            d.get("kind", "?"),
            stat(d.get("psi")),
            stat(d.get("ks_pvalue")),
            f"[bold red]yes[/] [dim]({output.escape(d.get('reason') or '')})[/]"
            if d.get("drifted")
            else "no",
        )
    console.print(drift)
