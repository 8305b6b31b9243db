"""``triptych predict MODEL_URI --input in.parquet --output out.parquet``: batch scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def predict(
    model_uri: str = typer.Argument(..., help="models:/NAME@alias, models:/NAME/3 or runs:/…"),
    input_path: Path = typer.Option(..., "--input", "-i", help="A .parquet (or folder) or .csv."),
    output_path: Path = typer.Option(..., "--output", "-o", help="The .parquet to write."),
    chunk_size: int = typer.Option(10_000, "--chunk-size", help="Rows read and scored at once."),
    workers: int = typer.Option(1, "--workers", "-w", help="Chunks scored in parallel."),
    max_error_rate: float = typer.Option(
        0.01, "--max-error-rate", help="Stop, writing nothing, past this share of bad rows."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Where rejected rows go (default: OUTPUT.rejects.parquet)."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Pass empty values to the model instead of rejecting."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Score a file with a model: checked row by row, in chunks, in parallel."""
    from triptych.cli import output
    from triptych.scoring.batch import score_file
    from triptych.tracking.client import Client

    with _progress(quiet=json_out) as update:
        result = score_file(
            model_uri,
            input_path,
            output_path,
            chunk_size=chunk_size,
            workers=workers,
            max_error_rate=max_error_rate,
            rejects_path=rejects,
            allow_missing=allow_missing,
            progress=update,
            client=Client(),
        )
    if json_out:
        output.print_json(result.to_dict())
        return
    console = output.console()
    console.print(
        f"scored [bold]{result.scored}[/] of {result.rows} rows in {result.seconds:.2f}s "
        f"({result.rows_per_second:,.0f} rows/s) → {output.escape(result.output)}"
    )
    if result.rejected:
        console.print(
            f"[yellow]{result.rejected} rejected[/] → {output.escape(result.rejects or '')}"
        )
        for sample in result.sample:
            console.print(f"  row {sample['row']}: {output.escape(str(sample['reason']))}")


class _progress:
    """A rich progress bar on stderr (none with --json); yields the update callback."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from triptych.cli import output

        self.bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=output.console(stderr=True),
            transient=True,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("score", total=None)
        return self.update

    def update(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
