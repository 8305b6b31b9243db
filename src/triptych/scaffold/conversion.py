"""What ``triptych init --from-notebook`` makes of a notebook (:mod:`.notebook` reads and
parses it): the sections, and the files they become — the script of step functions, the
pipeline, the parameters and CONVERSION.md."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """One function of the script: a run of cells under one heading."""

    name: str
    title: str
    cells: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # markdown, as comment lines
    body: list[str] = field(default_factory=list)  # code lines, not indented
    statements: list[ast.stmt] = field(default_factory=list)
    statement_cells: list[int] = field(default_factory=list)  # the cell of each statement
    inputs: list[str] = field(default_factory=list)  # from earlier sections
    params: list[str] = field(default_factory=list)  # from the parameters cell
    outputs: list[str] = field(default_factory=list)  # read by later sections
    binds: set[str] = field(default_factory=set)


@dataclass
class Conversion:
    """A converted notebook: its parameters, module-level code, sections and the report."""

    source: str
    module: str
    pipeline: str
    title: str
    params: dict[str, Any]
    imports: list[str]
    helpers: list[str]
    sections: list[Section]
    dropped: list[str]  # magics and shell escapes removed (expected, listed for the record)
    problems: list[str]  # what could not be converted

    def script(self) -> str:
        """``src/<package>/<module>.py``: the step functions and ``main()``."""
        out = [
            f'"""{self.title}\n\nConverted from {self.source} by '
            "``triptych init --from-notebook``: each function is a\nsection of the notebook "
            f"and a step of ``pipelines/{self.module}.py``; ``main()`` runs them\nin order. "
            'See CONVERSION.md for what could not be converted.\n"""',
            "",
            *self.imports,
            "",
            "# The notebook's parameters cell (the project's params.yaml overrides it).",
            f"PARAMS = {self.params!r}",
        ]
        for helper in self.helpers:
            out += ["", "", helper.rstrip()]
        for s in self.sections:
            args = ", ".join([*s.inputs, *(f"{p}=PARAMS[{p!r}]" for p in s.params)])
            cells = ("cell " if len(s.cells) == 1 else "cells ") + ", ".join(map(str, s.cells))
            doc = f"{s.title} ({cells})." if s.title != f"cell {s.cells[0]}" else f"{s.title}."
            out += ["", "", f"def {s.name}({args}):", f'    """{doc[0].upper()}{doc[1:]}"""']
            out += [f"    {line}".rstrip() for line in _tidy([*s.comments, "", *s.body])]
            if s.outputs:
                out.append(f"    return {', '.join(s.outputs)}")
        out += ["", "", f"def main({self._signature()}) -> None:"]
        out += ['    """The notebook from top to bottom, as the pipeline runs it."""']
        out += [f"    {line}" for line in self._calls(lambda s: s.name)]
        out += [
            "",
            "",
            "def _parameters() -> dict:",
            '    """PARAMS, with the pipeline\'s section of the project\'s params.yaml over it."""',
            "    from pathlib import Path",
            "",
            "    from triptych.pipelines.params import read_file",
            "",
            "    found = read_file(Path(__file__).resolve().parents[2] / 'params.yaml')",
            f"    return {{**PARAMS, **found.get({self.pipeline!r}, {{}})}}",
            "",
            "",
            'if __name__ == "__main__":',
            "    import triptych",
            "",
            "    parameters = _parameters()",
            f"    with triptych.start_run(experiment={self.pipeline!r}, name='script'):",
            "        triptych.log_params(parameters)",
            "        main(**parameters)",
            "",
        ]
        return "\n".join(out)

    def pipeline_file(self, package: str) -> str:
        """``pipelines/<module>.py``: the sections as steps, the notebook's order as the graph."""
        out = [
            f'"""The pipeline of {self.source}: one step per section of the notebook.\n\n'
            f"    triptych pipeline run pipelines/{self.module}.py\n\n"
            f"The step functions live in ``src/{package}/{self.module}.py``; the "
            f"``{self.pipeline}`` section\nof ``params.yaml`` holds the notebook's parameters.\n"
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from triptych.pipelines import pipeline, step",
            "",
            f"from {package} import {self.module} as steps",
            "",
        ]
        for s in self.sections:
            if len(s.outputs) > 1:
                listed = ", ".join(repr(o) for o in s.outputs)
                out.append(f"{s.name} = step(outputs=({listed}))(steps.{s.name})")
            else:
                out.append(f"{s.name} = step(steps.{s.name})")
        out += ["", "", "@pipeline", f"def {self.pipeline}({self._signature()}) -> None:"]
        out += [f"    {line}" for line in self._calls(lambda s: s.name)]
        return "\n".join(out) + "\n"

    def params_yaml(self) -> str:
        import yaml

        head = (
            f"# Parameters of pipelines/{self.module}.py: the section {self.pipeline!r} is the\n"
            f"# @pipeline function's arguments (the parameters cell of {self.source}).\n"
        )
        if not self.params:
            return head + "# (the notebook has no cell tagged 'parameters')\n"
        return head + yaml.safe_dump({self.pipeline: self.params}, sort_keys=False)

    def report(self) -> str:
        """CONVERSION.md."""
        lines = [
            f"# Conversion of {self.source}",
            "",
            f"- script: `src/…/{self.module}.py` ({len(self.sections)} step functions, `main()`)",
            f"- pipeline: `pipelines/{self.module}.py` (`@pipeline {self.pipeline}`)",
            f"- parameters: {', '.join(self.params) or '(none: no cell tagged `parameters`)'}",
            "",
            "## Steps",
            "",
            "| step | cells | takes | returns |",
            "| --- | --- | --- | --- |",
        ]
        for s in self.sections:
            takes = ", ".join([*s.inputs, *(f"{p} (parameter)" for p in s.params)]) or "-"
            lines.append(
                f"| `{s.name}` | {', '.join(map(str, s.cells))} | {takes} | "
                f"{', '.join(s.outputs) or '-'} |"
            )
        lines += ["", "## Could not convert", ""]
        lines += [f"- {p}" for p in self.problems] or ["- nothing"]
        lines += ["", "## Dropped (magics and shell escapes)", ""]
        lines += [f"- {d}" for d in self.dropped] or ["- nothing"]
        lines += [
            "",
            "## Next",
            "",
            "- values passed between steps must be storable: DataFrames, numpy arrays, JSON "
            "values, paths, fitted models (see docs/pipelines.md);",
            "- `ruff format . && ruff check --fix .` tidies the converted code for the lint gate;",
            "- to gate and register the model, call `triptych.registry.gate(...)` in a step, "
            "as `triptych init` projects do: `triptych ci --only gate` reads its decision.",
            "",
        ]
        return "\n".join(lines)

    def _signature(self) -> str:
        return ", ".join(f"{k}: {_annotation(v)} = {v!r}" for k, v in self.params.items())

    def _calls(self, name: Any) -> list[str]:
        lines = []
        for s in self.sections:
            args = ", ".join([*s.inputs, *(f"{p}={p}" for p in s.params)])
            call = f"{name(s)}({args})"
            lines.append(f"{', '.join(s.outputs)} = {call}" if s.outputs else call)
        return lines or ["pass"]


def _tidy(lines: list[str]) -> list[str]:
    """Without blank lines at either end or two in a row."""
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def _annotation(value: Any) -> str:
    return type(value).__name__ if value is not None else "object"
