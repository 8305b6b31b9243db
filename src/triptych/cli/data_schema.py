"""``triptych data schema``, ``validate`` and ``check``: what a dataset must look like, and
whether data does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from triptych.cli.data import _client, app


# -- schema -------------------------------------------------------------------------------------
@app.command()
def schema(
    name: str = typer.Argument(..., help="Dataset name."),
    set_: Path = typer.Option(None, "--set", help="Replace the schema with this YAML file."),
    edit: bool = typer.Option(False, "--edit", help="Edit the schema in $VISUAL / $EDITOR."),
) -> None:
    """Print the schema new data of NAME is validated against (YAML); --set or --edit it."""
    import sys

    from triptych.data import registry
    from triptych.data.schema import Schema
    from triptych.errors import InvalidInput, NotFound

    client = _client()
    if set_ is not None and edit:
        raise InvalidInput("--set and --edit cannot be combined", hint="use one of them")
    if set_ is not None:
        registry.get_schema(name, client=client)  # the dataset exists before reading the file
        if not set_.is_file():
            raise NotFound(f"no file at {set_}")
        try:
            new = Schema.from_yaml(set_.read_text(encoding="utf-8"))
        except InvalidInput as e:
            raise InvalidInput(
                f"{set_}: {e.message}; schema unchanged", hint=e.hint or f"fix {set_} and retry"
            ) from e
        registry.set_schema(name, new, client=client)
        typer.echo(f"schema of {name} replaced ({len(new.columns)} columns)")
        return
    current = registry.get_schema(name, client=client)
    if edit:
        _edit_schema(name, current, client)
        return
    sys.stdout.write(current.to_yaml())


def _edit_schema(name: str, current: Any, client: Any) -> None:
    """Open the schema in the editor through a temp file; save only if it parses."""
    import os
    import shlex
    import subprocess
    import tempfile

    from triptych.data import registry
    from triptych.data.schema import Schema
    from triptych.errors import InvalidInput

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    before = current.to_yaml()
    fd, tmp = tempfile.mkstemp(prefix=f"triptych-schema-{name}-", suffix=".yaml")
    path = Path(tmp)
    keep = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(before)
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except (OSError, ValueError) as e:
            raise InvalidInput(
                f"cannot run the editor {editor!r}: {e}",
                hint="set $EDITOR (or $VISUAL) to an editor command",
            ) from e
        if done.returncode != 0:
            raise InvalidInput(
                f"the editor {editor!r} exited with code {done.returncode}; schema unchanged"
            )
        after = path.read_text(encoding="utf-8")
        if after == before:
            typer.echo(f"schema of {name} unchanged")
            return
        try:
            new = Schema.from_yaml(after)
        except InvalidInput as e:
            keep = True
            raise InvalidInput(
                f"{e.message}; schema unchanged",
                hint=f"your edit is in {path}: fix it, then `triptych data schema {name} "
                f"--set {path}`",
            ) from e
        registry.set_schema(name, new, client=client)
        typer.echo(f"schema of {name} saved ({len(new.columns)} columns)")
    finally:
        if not keep:
            path.unlink(missing_ok=True)


# -- validate, check ----------------------------------------------------------------------------
@app.command()
def validate(
    name: str = typer.Argument(..., help="Dataset whose schema to validate against."),
    path: Path = typer.Argument(..., help="A .csv/.tsv, .jsonl/.ndjson or .parquet file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every way PATH departs from the schema of NAME; exit code 1 when it does."""
    from triptych.cli import output
    from triptych.data import registry

    violations = registry.validate(name, path, client=_client())
    if json_out:
        output.print_json(
            output.clean_floats(
                {"ok": not violations, "violations": [v.to_dict() for v in violations]}
            )
        )
    else:
        console = output.console()
        if not violations:
            console.print(f"ok: {output.escape(str(path))} matches the schema of {name}")
        else:
            from rich.table import Table

            table = Table(
                title=f"{len(violations)} violation(s): {output.escape(str(path))} does not "
                f"match the schema of {name}",
                title_justify="left",
                caption="rows count from 0, the first data row",
                caption_justify="left",
            )
            table.add_column("kind", style="red", no_wrap=True)
            table.add_column("column", no_wrap=True)
            table.add_column("count", justify="right")
            table.add_column("message")
            table.add_column("examples")
            for v in violations:
                table.add_row(
                    v.kind,
                    output.escape(v.column),
                    str(v.count) if v.count else "-",
                    output.escape(v.message),
                    output.escape(_examples(v.examples)),
                )
            console.print(table)
    if violations:
        raise typer.Exit(1)


def _examples(examples: list[dict[str, Any]]) -> str:
    return ", ".join(f"row {e.get('row')}: {e.get('value')!r}" for e in examples) or "-"


@app.command()
def check(
    name: str = typer.Argument(..., help="Dataset whose schema (and latest version) to use."),
    path: Path = typer.Argument(..., help="A .csv/.tsv, .jsonl/.ndjson or .parquet file."),
    reference: str = typer.Option(
        None, "--reference", "-r", help="NAME@VERSION to compare with (default: NAME@latest)."
    ),
    max_missing: float = typer.Option(
        0.0, "--max-missing", min=0.0, max=1.0, help="Largest fraction of nulls per column."
    ),
    psi: float = typer.Option(0.2, "--psi", min=0.0, help="PSI above this is a shift."),
    ks_pvalue: float = typer.Option(
        0.05,
        "--ks-pvalue",
        min=0.0,
        max=1.0,
        help="KS p-value below this is a shift (0 turns the KS test off).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Data tests on PATH: schema, missing values, distribution shift; exit 1 if one fails."""
    from triptych.cli import output
    from triptych.cli.data_views import print_checks
    from triptych.data import registry

    ref_version, results = registry.check(
        name,
        path,
        reference=reference,
        max_missing=max_missing,
        psi_threshold=psi,
        ks_pvalue=ks_pvalue if ks_pvalue > 0 else None,
        client=_client(),
    )
    ok = all(r.passed for r in results)
    if json_out:
        output.print_json(
            output.clean_floats(
                {
                    "ok": ok,
                    "reference": ref_version.uri,
                    "checks": [r.to_dict() for r in results],
                }
            )
        )
    else:
        print_checks(results, path, ref_version.uri)
    if not ok:
        raise typer.Exit(1)
