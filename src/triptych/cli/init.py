"""``triptych init``: scaffold a project, or turn a notebook into one."""

from __future__ import annotations

from pathlib import Path

import typer


def init(
    project: Path = typer.Argument(
        None, help="The new project's folder; its name gives the package name."
    ),
    from_notebook: Path = typer.Option(
        None, "--from-notebook", help="Convert this .ipynb into the project's script and steps."
    ),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty folder (existing files are kept)."
    ),
    git: bool = typer.Option(True, "--git/--no-git", help="git init the new project."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Scaffold a project that passes its own tests and CI gates: ML code in src/, the
    training pipeline, params.yaml, tests, CI workflows (GitHub and GitLab), Dockerfile."""
    from triptych.cli import output
    from triptych.errors import InvalidInput

    if from_notebook is not None:
        from triptych.scaffold import notebook

        result = notebook.init_from_notebook(from_notebook, project, force=force, git=git)
    else:
        if project is None:
            raise InvalidInput(
                "give the project's folder", hint="triptych init my-project (or --from-notebook)"
            )
        from triptych.scaffold import init as scaffold

        result = scaffold.init(project, force=force, git=git)
    if json_out:
        output.print_json(result.to_dict())
        return
    console = output.console()
    esc = output.escape
    console.print(
        f"[green]created[/] {esc(result.path)}: package [bold]{esc(result.package)}[/], "
        f"{len(result.files)} files (git: {esc(result.git)})"
    )
    for name in result.skipped:
        console.print(f"  [yellow]kept[/] {esc(name)} (it exists; not overwritten)")
    for note in result.notes:
        console.print(f"  [yellow]could not convert[/] {esc(note)}")
    console.print(
        esc(f"next: cd {result.path} && pip install -e '.[dev]' && triptych ci"), highlight=False
    )
