"""Printing for commands: rich tables for people, ``--json`` for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any


def console(stderr: bool = False) -> Any:
    """A rich console; when output goes to a file or pipe, wide enough not to cut tables."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_json(data: Any) -> None:
    """JSON on stdout, always valid and stable for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default, allow_nan=False) + "\n")


def _default(value: Any) -> Any:
    if hasattr(value, "value"):  # enums
        return value.value
    if isinstance(value, float):
        return None
    return str(value)


def clean_floats(data: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(data, float):
        return data if data == data and data not in (float("inf"), float("-inf")) else None
    if isinstance(data, dict):
        return {k: clean_floats(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean_floats(v) for v in data]
    return data


def error(message: str, hint: str | None = None) -> None:
    """One line on stderr: the problem, then the fix when there is one."""
    fix = f" [dim](fix: {escape(hint)})[/]" if hint else ""
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}{fix}", soft_wrap=True)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def when(ms: int | None, short: bool = False) -> str:
    """Local time; ``short`` drops the year and seconds for tables."""
    if not ms:
        return "-"
    local = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone()
    return local.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return "-"
    seconds = (end - start) / 1000
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if value != value:
        return "nan"
    return f"{value:.6g}"


STATUS_STYLE = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


def status(text: str) -> str:
    return f"[{STATUS_STYLE.get(text, 'white')}]{text}[/]"


def size(size: int | None) -> str:
    """Bytes for people: 512 B, 9.4 KB, 1.2 GB."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)
