"""How the benchmark drivers print: Rich tables (plain aligned columns without Rich), dim notes
below, and what ``--json [FILE]`` does, the same in every script.

Imported lazily by the drivers, like :mod:`_machine` (see there why): their worker processes
run copies of the scripts elsewhere, so nothing on a worker's path imports this.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Rows = Sequence[Sequence[str]]  # a table: its header row first


def emit(report: dict[str, Any], json_option: str | None, show: Callable[[], None]) -> None:
    """``--json``: the JSON on stdout; ``--json FILE``: JSON into FILE and the table shown."""
    text = json.dumps(report, indent=2)
    if json_option == "-":
        print(text)
        return
    if json_option:
        Path(json_option).write_text(text + "\n", encoding="utf-8")
    show()


def print_tables(
    title: str,
    tables: Sequence[Rows],
    notes: Sequence[str],
    *,
    right: Callable[[int], bool],
    width: int = 130,
) -> None:
    """Each table under ``title``; a row whose last cell is ``NO`` (a target missed) in red.
    ``right(i)`` says which columns are right-aligned; ``width`` applies to files and pipes,
    so that a saved report does not wrap at 80 columns."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for lines in tables:
            widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
            for cells in lines:
                print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
            print()
        for note in notes:
            print(note)
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=width)
    for n, lines in enumerate(tables):
        table = Table(title=title if n == 0 else None, title_justify="left")
        for i, header in enumerate(lines[0]):
            table.add_column(header, justify="right" if right(i) else "left", no_wrap=True)
        for cells in lines[1:]:
            table.add_row(*cells, style="red" if cells[-1] == "NO" else None)
        console.print(table)
    for note in notes:
        console.print(note, style="dim", markup=False, highlight=False)
