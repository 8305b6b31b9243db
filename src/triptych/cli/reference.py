"""The CLI reference (docs/cli.md), generated from the Typer app so it cannot drift.

    python -m triptych.cli.reference > docs/cli.md

``tests/test_docs.py`` fails when docs/cli.md differs from what this prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

HEADER = """\
# CLI reference

Generated from the command definitions by `python -m triptych.cli.reference > docs/cli.md`
(a test checks it is current). Every command takes `-h`/`--help`; most take `--json` for
scripts. Errors are one line with the fix and exit code 1; usage errors exit 2; `--debug`
shows the traceback.
"""


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")  # typer ships its own click: no isinstance


def _walk(command: Any, context: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    if _is_group(command):
        ctx = context(command)
        # by name: registration order depends on which module a process imported first
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _walk(sub, context, [*path, name])


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _param_row(param: Any) -> str | None:
    if param.param_type_name == "argument":
        name = f"`{(param.metavar or param.name or '').upper()}`"
        what = _cell(getattr(param, "help", None) or "")
        kind = "argument" if param.required else "argument, optional"
        return f"| {name} | {what + ' ' if what else ''}({kind}) | |"
    if param.param_type_name != "option" or getattr(param, "hidden", False):
        return None
    names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    default = ""
    if not param.is_flag and param.default not in (None, (), []):
        default = f"`{param.default}`"
    return f"| {names} | {_cell(param.help or '')} | {default} |"


def render() -> str:
    """The reference as Markdown."""
    import typer

    from triptych.cli.main import app

    root = typer.main.get_command(app)
    context = type(root.make_context("triptych", [], resilient_parsing=True))
    out = [HEADER]
    for path, command in _walk(root, context, ["triptych"]):
        if len(path) == 1:
            continue
        depth = "##" if len(path) == 2 else "###"
        out.append(f"{depth} `{' '.join(path)}`\n")
        help_text = (command.help or "").strip()
        if help_text:
            out.append(_cell(help_text.split("\n\n")[0]) + "\n")
        if _is_group(command) and not [p for p in command.params if p.name != "help"]:
            continue  # a group that also runs (``triptych server``) lists its own options
        ctx = context(command, info_name=" ".join(path))
        out.append(f"```\n{command.get_usage(ctx)}\n```\n")
        rows = [r for r in (_param_row(p) for p in command.params) if r]
        rows = [r for r in rows if "`--help`" not in r]
        if rows:
            out.append("| parameter | meaning | default |\n|---|---|---|")
            out.append("\n".join(rows) + "\n")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
