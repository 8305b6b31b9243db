"""``triptych data …``: versioned datasets, their schema, profile, checks and lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from triptych.cli.data_views import column_count, tags_text, versions_table

app = typer.Typer(
    help="Add, list, show, load, validate and check versioned datasets.", no_args_is_help=True
)
SHORT_ID = 8  # run ids in tables, as in `runs list`


def _client() -> Any:
    from triptych.tracking.client import Client

    return Client()


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """``["k=v", …]`` as a dict; a clear error for an item without ``=``."""
    from triptych.errors import InvalidInput

    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"invalid {what} {item!r}", hint="write key=value, e.g. owner=ana")
        pairs[key.strip()] = value
    return pairs


def _version_dict(version: Any, *, profile: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uri": version.uri,
        "name": version.name,
        "version": version.version,
        "rows": version.rows,
        "columns": column_count(version),
        "size": version.size,
        "digest": version.digest,
        "source": version.source,
        "description": version.description,
        "tags": dict(version.tags),
        "creator_run_id": version.creator_run_id,
        "creation_time": version.creation_time,
    }
    if profile:
        data["schema"] = version.schema
        data["profile"] = version.profile
    return data


@app.command()
def add(
    name: str = typer.Argument(..., help="Dataset name (letters, digits, '_', '.', '-')."),
    path: Path = typer.Argument(..., help="A .csv/.tsv, .jsonl/.ndjson or .parquet file."),
    description: str = typer.Option(None, "--description", "-d", help="What this version is."),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="key=value (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add PATH as the next version of NAME (identical content: the existing version)."""
    from triptych.cli import output
    from triptych.data import registry
    from triptych.data.ingest import source_kind
    from triptych.errors import NotFound

    tags = _pairs(tag, "tag")
    client = _client()
    try:
        known = {v.version for v in registry.versions(name, client=client)}
    except NotFound:
        known = set()
    by_rows = source_kind(path) == "parquet"  # progress counts rows for Parquet, else bytes
    version = _with_progress(
        f"reading {path.name}",
        by_rows,
        lambda report: registry.add(
            name, path, description=description, tags=tags, progress=report, client=client
        ),
    )
    created = version.version not in known
    if json_out:
        output.print_json({**_version_dict(version, profile=False), "created": created})
        return
    columns = column_count(version)
    what = f"{version.rows} rows, {columns if columns is not None else '?'} columns"
    console = output.console()
    if created:
        console.print(f"added [bold]{version.uri}[/]: {what}  [dim](new version)[/]")
    else:
        console.print(
            f"[bold]{version.uri}[/] already holds this content: {what}  "
            "[dim](existing identical version, nothing added)[/]"
        )


def _with_progress(label: str, by_rows: bool, work: Any) -> Any:
    """Run ``work(report)`` under a progress bar on stderr (shown only on a terminal)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from triptych.cli import output

    console = output.console(stderr=True)
    counters = (
        [MofNCompleteColumn(), TextColumn("rows")]
        if by_rows
        else [DownloadColumn(), TransferSpeedColumn()]
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counters,
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(output.escape(label), total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if done >= total:  # read: what remains is profiling and storing
                bar.update(task, description=f"{output.escape(label)}: profiling and storing")

        return work(report)


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List datasets: latest version, number of versions, last update."""
    from triptych.cli import output
    from triptych.data import registry

    found = registry.list_datasets(client=_client())
    if json_out:
        output.print_json(
            [
                {
                    "name": d.name,
                    "latest_version": d.latest_version,
                    "versions": d.versions,
                    "description": d.description,
                    "creation_time": d.creation_time,
                    "last_update_time": d.last_update_time,
                }
                for d in found
            ]
        )
        return
    console = output.console()
    if not found:
        console.print("no datasets yet: add one with `triptych data add NAME data.csv`")
        return
    from rich.table import Table

    table = Table()
    table.add_column("name", no_wrap=True)
    table.add_column("latest", justify="right")
    table.add_column("versions", justify="right")
    table.add_column("updated", no_wrap=True)
    table.add_column("description", max_width=40)
    for d in found:
        table.add_row(
            output.escape(d.name),
            str(d.latest_version) if d.latest_version is not None else "-",
            str(d.versions),
            output.when(d.last_update_time),
            output.escape(d.description or ""),
        )
    console.print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME (latest version) or NAME@VERSION."),
    versions: bool = typer.Option(False, "--versions", help="List every version instead."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a version (address, size, digest, source, tags) and the profile of its columns."""
    from triptych.cli import output
    from triptych.data import registry

    client = _client()
    if versions:
        found = registry.versions(registry.parse_ref(ref).name, client=client)
        if json_out:
            output.print_json([_version_dict(v, profile=False) for v in found])
        else:
            versions_table(found)
        return
    version = registry.get(ref, client=client)
    if json_out:
        output.print_json(output.clean_floats(_version_dict(version)))
        return
    from rich.table import Table

    console = output.console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    columns = column_count(version)
    head.add_row("dataset", version.uri)
    head.add_row(
        "rows", f"{version.rows}  [dim]({columns if columns is not None else '?'} columns)[/]"
    )
    head.add_row("size", f"{output.size(version.size)}  [dim](Parquet)[/]")
    head.add_row("digest", version.digest)
    head.add_row("source", output.escape(version.source or "-"))
    head.add_row("created", output.when(version.creation_time))
    if version.description:
        head.add_row("description", output.escape(version.description))
    head.add_row("tags", output.escape(tags_text(version.tags)))
    head.add_row("creator run", version.creator_run_id or "-")
    console.print(head)
    profile = (version.profile or {}).get("columns") or {}
    if not profile:
        return
    console.print()
    from triptych.cli.data_views import profile_table

    console.print(profile_table(profile))


# -- load, delete, tag --------------------------------------------------------------------------
@app.command()
def load(
    ref: str = typer.Argument(..., help="NAME (latest version) or NAME@VERSION."),
    output_path: Path = typer.Option(
        None, "--output", "-o", help="Write the table to FILE.csv or FILE.parquet."
    ),
    head: int = typer.Option(10, "--head", "-n", min=0, help="Rows to print (no --output)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write a version to a file, or print its first rows."""
    from triptych.cli import output
    from triptych.data import registry

    client = _client()
    version = registry.get(ref, client=client)
    if output_path is not None:
        writer = _writer(output_path)
        table = registry.load_table(version.uri, client=client)
        _write_atomically(output_path, lambda tmp: writer(table, tmp))
        if json_out:
            output.print_json(
                {"uri": version.uri, "output": str(output_path), "rows": version.rows}
            )
        else:
            output.console().print(
                f"wrote {version.rows} rows of {version.uri} to {output.escape(str(output_path))}"
            )
        return
    table = registry.load_table(version.uri, client=client)
    rows = table.slice(0, head).to_pylist()
    if json_out:
        output.print_json(
            output.clean_floats(
                {
                    "uri": version.uri,
                    "rows": version.rows,
                    "columns": table.column_names,
                    "head": rows,
                }
            )
        )
        return
    from rich.table import Table

    shown = Table()
    for name in table.column_names:
        shown.add_column(output.escape(name), no_wrap=True, max_width=30)
    for row in rows:
        shown.add_row(*["-" if v is None else output.escape(str(v)) for v in row.values()])
    console = output.console()
    console.print(shown)
    console.print(f"[dim]{version.uri}: first {len(rows)} of {version.rows} rows[/]")


def _writer(path: Path) -> Any:
    """How to write a pyarrow Table to ``path``, chosen by its suffix."""
    from triptych.errors import InvalidInput

    suffix = path.name.lower()
    if suffix.endswith((".parquet", ".pq")):

        def parquet(table: Any, target: Path) -> None:
            import pyarrow.parquet as pq

            pq.write_table(table, target)

        return parquet
    if suffix.endswith(".csv"):

        def csv(table: Any, target: Path) -> None:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, target)

        return csv
    raise InvalidInput(
        f"cannot tell which format to write from {path.name!r}",
        hint="end the file name with .csv or .parquet",
    )


def _write_atomically(path: Path, write: Any) -> None:
    """Write through a temporary file next to ``path``: no half-written file on failure."""
    import os
    import tempfile

    from triptych.errors import InvalidInput

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"no folder {folder}", hint="create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@app.command()
def delete(
    ref: str = typer.Argument(..., help="NAME@VERSION: the version to delete."),
    force: bool = typer.Option(False, "--force", help="Delete even though runs used it."),
) -> None:
    """Delete a version; refused while runs used it (their lineage would break)."""
    from triptych.data import registry
    from triptych.errors import InvalidInput

    parsed = registry.parse_ref(ref)
    if parsed.version is None:
        raise InvalidInput(f"name the version to delete, not {ref!r}", hint=f"e.g. {parsed.name}@1")
    version = registry.delete(f"{parsed.name}@{parsed.version}", force=force, client=_client())
    typer.echo(f"deleted {version.uri}")


@app.command()
def tag(
    ref: str = typer.Argument(..., help="NAME (latest version) or NAME@VERSION."),
    pairs: list[str] = typer.Argument(..., help="key=value (one or more)."),
) -> None:
    """Set tags on a version (existing keys are overwritten, others kept)."""
    from triptych.cli import output
    from triptych.data import registry

    version = registry.tag(ref, _pairs(pairs, "tag"), client=_client())
    output.console().print(f"{version.uri}: {output.escape(tags_text(version.tags))}")


# -- lineage ------------------------------------------------------------------------------------
@app.command()
def lineage(
    ref: str = typer.Argument(..., help="NAME (latest version) or NAME@VERSION."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The runs that used a version, oldest first, and the models registered from them."""
    from triptych.cli import output
    from triptych.data import registry

    client = _client()
    version = registry.get(ref, client=client)
    runs = registry.lineage(version.uri, client=client)
    models = registry.models_trained_on(version.uri, client=client)
    if json_out:
        output.print_json(
            {
                "uri": version.uri,
                "runs": [
                    {
                        "run_id": r.run_id,
                        "name": r.name,
                        "experiment_id": r.experiment_id,
                        "status": r.status.value,
                        "start_time": r.start_time,
                        "end_time": r.end_time,
                    }
                    for r in runs
                ],
                "models": [
                    {"uri": m.uri, "run_id": m.run_id, "aliases": list(m.aliases)} for m in models
                ],
            }
        )
        return
    console = output.console()
    if not runs:
        console.print(f"no run used {version.uri} yet")
        return
    from rich.table import Table

    table = Table(title=f"runs that used {version.uri}", title_justify="left")
    table.add_column("run id", no_wrap=True)
    table.add_column("name", max_width=30)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    for r in runs:
        table.add_row(
            r.run_id[:SHORT_ID],
            output.escape(r.name or ""),
            output.status(r.status.value),
            output.when(r.start_time),
        )
    console.print(table)
    for m in models:
        aliases = f" @{', @'.join(m.aliases)}" if m.aliases else ""
        console.print(f"model {m.uri}{aliases}  [dim]from run {(m.run_id or '-')[:SHORT_ID]}[/]")


from triptych.cli import data_schema  # noqa: E402, F401  (its commands join this app)
