"""``triptych init --from-notebook``: a notebook becomes a script, step functions and a pipeline.

The notebook is read with nbformat and its code is parsed with :mod:`ast`; it is never run.

- IPython magics (``%…``, ``%%time``) and shell escapes (``!…``) are dropped; a cell magic that
  changes the language (``%%bash``, ``%%html``…) drops its cell, and is reported;
- the cell tagged ``parameters`` (papermill's convention) becomes the pipeline's section of
  ``params.yaml`` (``name = literal`` statements);
- markdown becomes comments; a markdown heading starts a new *section*, and each section
  becomes one function in ``src/<package>/<module>.py`` (a step of ``pipelines/<module>.py``),
  with the names it reads from earlier sections as arguments and the names later sections read
  as results (a section that reads a name also passes it on, so in-place changes such as
  ``model.fit(...)`` reach later steps). Without headings every code cell is a section;
- imports, functions and classes are lifted to the top of the module;
- what could not be converted is listed in ``CONVERSION.md`` and printed.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import re
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, NotFound
from triptych.scaffold import init as scaffold
from triptych.scaffold import names
from triptych.scaffold.conversion import Conversion, Section

PARAMETERS_TAG = "parameters"
# Cell magics whose body is still Python: the magic line is dropped, the code kept.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
_NOTEBOOK_ONLY = ("ipywidgets", "IPython")
_BUILTINS = set(dir(builtins)) | {"__name__", "__file__", "display", "get_ipython"}
_MAGIC_LINE = re.compile(r"^\s*(?:%|!)")
_TIMING_LINE = re.compile(r"^(\s*)%(time|timeit|prun)\s+(\S.*)$")  # the statement is kept
_ASSIGNED_MAGIC = re.compile(r"^\s*[\w.,\s]+=\s*(?:%|!)")
_HELP_LINE = re.compile(r"^\s*(?:\?\??[\w.]+|[\w.]+\?\??)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# The example's files, replaced by what the conversion writes by what the conversion writes.
_EXAMPLE_FILES = (
    "src/<package>/data.py",
    "src/<package>/features.py",
    "src/<package>/train.py",
    "src/<package>/evaluate.py",
    "pipelines/training.py",
    "pipelines/scoring.py",
    "params.yaml",
    "tests/unit/test_train.py",
    "tests/data/test_data.py",
)


def read(path: Path) -> Any:
    """The notebook at ``path`` (nbformat 4), or a clear error."""
    import nbformat

    if not path.is_file():
        raise NotFound(f"no notebook at {path}", hint="give the .ipynb file")
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError, KeyError, nbformat.reader.NotJSONError) as e:
        raise InvalidInput(f"{path} is not a readable notebook: {e}".splitlines()[0]) from None


def convert(path: str | Path, *, module: str | None = None) -> Conversion:
    """Convert the notebook at ``path`` (nothing is written). InvalidInput, naming the cell,
    for code that does not parse."""
    path = Path(path)
    nb = read(path)
    module = module or names.identifier(path.stem, "notebook")
    dropped: list[str] = []
    problems: list[str] = []
    params: dict[str, Any] = {}
    imports: list[str] = []
    helpers: list[tuple[int, ast.stmt, str]] = []
    sections: list[Section] = []
    title, titled = f"The {path.name} notebook as a script.", False
    current: Section | None = None
    headings = any(
        c.cell_type == "markdown" and _HEADING.search(c.source) for c in nb.cells if c.source
    )

    for number, cell in enumerate(nb.cells, start=1):
        text = cell.source or ""
        if cell.cell_type == "markdown":
            heading = _HEADING.search(text)
            if heading and not titled:
                title, titled = heading.group(1), True
            if heading and (current is None or current.body):
                current = Section("", heading.group(1))
                sections.append(current)
            elif heading and current is not None:
                current.title = heading.group(1)
            if current is None:
                current = Section("", "setup")
                sections.append(current)
            current.comments += [f"# {line}".rstrip() for line in text.splitlines()]
            continue
        if cell.cell_type != "code" or not text.strip():
            continue
        code = _clean(text, number, dropped, problems)
        if code is None:
            continue
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            first = text.strip().splitlines()[0][:60]
            raise InvalidInput(
                f"cell {number} does not parse as Python: {e.msg} (line {e.lineno})",
                hint=f"fix the cell that starts with {first!r}, then convert again",
            ) from None
        tags = set(cell.get("metadata", {}).get("tags", []))
        if PARAMETERS_TAG in tags:
            tree.body = _lift_parameters(tree.body, number, params, problems)
        if not headings or current is None:
            current = Section("", f"cell {number}")
            sections.append(current)
        lines = code.splitlines()
        previous_end = 0
        for stmt in tree.body:
            start = stmt.lineno - 1
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([start, *(d.lineno - 1 for d in stmt.decorator_list)])
            end = stmt.end_lineno or stmt.lineno
            lead, own = lines[previous_end:start], lines[start:end]
            previous_end = end
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                if _notebook_only(stmt):
                    problems.append(
                        f"cell {number}: `{ast.unparse(stmt)}` needs a notebook (widgets, "
                        "IPython display): removed"
                    )
                elif ast.unparse(stmt) not in imports:
                    imports.append(ast.unparse(stmt))
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                helpers.append((number, stmt, "\n".join([*lead, *own]).strip("\n")))
                continue
            if names.calls(stmt, "get_ipython"):
                problems.append(f"cell {number}: `{_short(stmt)}` needs IPython: removed")
                continue
            if names.calls(stmt, "display"):
                problems.append(
                    f"cell {number}: display() of rich output becomes print(): `{_short(stmt)}`"
                )
                own = [re.sub(r"\bdisplay\(", "print(", line) for line in own]
            if names.has_multiline_string(stmt):  # indenting the lines would change the string
                own = ast.unparse(stmt).splitlines()
            if stmt is tree.body[-1] and _displayed(stmt):  # the cell's output: printed
                own = [f"print({ast.unparse(stmt.value)})"]  # type: ignore[attr-defined]
            current.body += [*lead, *own]
            current.statements.append(stmt)
            current.statement_cells.append(number)
            if number not in current.cells:
                current.cells.append(number)
        trailing = [line for line in lines[previous_end:] if line.strip()]
        current.body += trailing

    sections = [s for s in sections if s.statements]
    if not sections:
        raise InvalidInput(f"{path} has no code to convert", hint="add code cells")
    conversion = Conversion(
        source=path.name,
        module=module,
        pipeline=names.identifier(path.stem, "notebook"),
        title=title,
        params=params,
        imports=imports,
        helpers=[segment for _, _, segment in helpers],
        sections=sections,
        dropped=dropped,
        problems=problems,
    )
    _dataflow(conversion, helpers)
    return conversion


def _clean(text: str, number: int, dropped: list[str], problems: list[str]) -> str | None:
    """The cell's code without magics and shell escapes; None when nothing is left."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines[first].lstrip().startswith("%%"):
        words = lines[first].lstrip()[2:].split()
        cell_magic = words[0] if words else ""
        if cell_magic not in _PYTHON_CELL_MAGICS:
            problems.append(f"cell {number}: a %%{cell_magic} cell is not Python: dropped")
            return None
        dropped.append(f"cell {number}: `%%{cell_magic}` (the cell's code is kept)")
        lines = lines[first + 1 :]
    try:
        ast.parse("\n".join(lines))
        return "\n".join(lines)  # plain Python: nothing to drop
    except SyntaxError:
        pass
    out: list[str] = []
    continued = False
    for line in lines:
        timing = None if continued else _TIMING_LINE.match(line)
        if timing:
            dropped.append(f"cell {number}: `%{timing[2]}` before `{timing[3][:40]}` (kept)")
            out.append(timing[1] + timing[3])
            continue
        magic = continued or bool(_MAGIC_LINE.match(line) or _HELP_LINE.match(line))
        if _ASSIGNED_MAGIC.match(line) and not magic:
            name = line.split("=", 1)[0].strip()
            problems.append(
                f"cell {number}: `{line.strip()}` assigns the output of a shell escape or magic: "
                f"removed, so {name} is undefined"
            )
            magic = True
        if magic:
            if not continued:
                dropped.append(f"cell {number}: `{line.strip()}`")
            continued = line.rstrip().endswith("\\")
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass  # dropped: {line.strip()}" if indent else "")
            continue
        out.append(line)
    code = "\n".join(out)
    return code if code.strip() else None


def _lift_parameters(
    body: list[ast.stmt], number: int, params: dict[str, Any], problems: list[str]
) -> list[ast.stmt]:
    """Move ``name = literal`` statements into ``params``; keep the rest as code."""
    kept = []
    for stmt in body:
        target = value = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        if isinstance(target, ast.Name) and value is not None:
            try:
                literal = ast.literal_eval(value)
                json.dumps(literal := _jsonable(literal), allow_nan=False)
            except (ValueError, TypeError, SyntaxError):
                problems.append(
                    f"cell {number}: parameter `{target.id}` is not a JSON literal: kept as code"
                )
            else:
                params[target.id] = literal
                continue
        elif not isinstance(stmt, (ast.Import, ast.ImportFrom)):
            problems.append(
                f"cell {number}: `{_short(stmt)}` in the parameters cell is not `name = value`: "
                "kept as code"
            )
        kept.append(stmt)
    return kept


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(type(value).__name__)


def _dataflow(c: Conversion, helpers: list[tuple[int, ast.stmt, str]]) -> None:
    """Name the sections, and work out what each takes from earlier ones and passes on."""
    module_names = set(_BUILTINS)
    for line in c.imports:
        module_names |= names.bound_by(ast.parse(line).body[0])
    module_names |= {h.name for _, h, _ in helpers}  # type: ignore[attr-defined]
    every: set[str] = set(module_names) | set(c.params)
    for s in c.sections:
        for stmt in s.statements:
            every |= names.loads(stmt) | names.bound_by(stmt)
    taken = every | set(keyword.kwlist) | {"main", "steps", "step", "pipeline", "PARAMS"}
    taken.add(c.pipeline)
    for s in c.sections:
        s.name = names.unique(names.identifier(s.title, "step"), taken)
        taken.add(s.name)

    latest: dict[str, Section] = {}  # name → the last section that bound or read it
    first_bound: dict[str, int] = {}
    for s in c.sections:
        bound: set[str] = set(module_names)
        for stmt, number in zip(s.statements, s.statement_cells, strict=True):
            for name in names.free_reads([stmt], bound):
                if name in s.inputs or name in s.params:
                    continue
                if name in latest:
                    s.inputs.append(name)
                    if name not in latest[name].outputs:
                        latest[name].outputs.append(name)
                elif name in c.params:
                    s.params.append(name)
                else:
                    c.problems.append(
                        f"cell {number}: `{name}` is used but no earlier cell defines it"
                    )
                    bound.add(name)
        bound -= module_names
        s.binds = bound
        for name in bound:
            if name in first_bound and name in latest and latest[name] is not s:
                used_later = any(name in _loads_of(t) for t in c.sections[c.sections.index(s) :])
                if used_later or name in latest[name].outputs:
                    c.problems.append(
                        f"cell {s.cells[0]} redefines `{name}` (first defined in cell "
                        f"{first_bound[name]}), which other cells use: each step gets the value "
                        "defined last before it, as running the notebook top to bottom does"
                    )
            first_bound.setdefault(name, s.cells[0])
        for name in [*s.inputs, *bound]:
            latest[name] = s
    for number, helper, _ in helpers:
        free = names.loads(helper) - names.bound_inside(helper) - module_names - set(c.params)
        for name in sorted(free & set(first_bound)):
            c.problems.append(
                f"cell {number}: `{helper.name}` reads the notebook variable `{name}`: "  # type: ignore[attr-defined]
                "pass it as an argument (it is not defined where the function now lives)"
            )


def _loads_of(s: Section) -> set[str]:
    return set().union(*(names.loads(stmt) for stmt in s.statements)) if s.statements else set()


def _notebook_only(stmt: ast.Import | ast.ImportFrom) -> bool:
    modules = (
        [stmt.module or ""] if isinstance(stmt, ast.ImportFrom) else [a.name for a in stmt.names]
    )
    return any(m.split(".")[0] in _NOTEBOOK_ONLY for m in modules)


def _displayed(stmt: ast.stmt) -> bool:
    """A cell's last statement that a notebook shows as the cell's output (a bare value, not
    a call made for its effect)."""
    return isinstance(stmt, ast.Expr) and not isinstance(
        stmt.value, (ast.Call, ast.Constant, ast.Await, ast.Yield, ast.YieldFrom)
    )


def _short(stmt: ast.AST) -> str:
    text = ast.unparse(stmt).splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."


def init_from_notebook(
    notebook: str | Path,
    project: str | Path | None = None,
    *,
    force: bool = False,
    git: bool = True,
) -> scaffold.Scaffolded:
    """A project (as ``triptych init`` makes) whose code is the converted notebook. The
    project folder defaults to one named after the notebook, in the current folder."""
    notebook = Path(notebook)
    target = scaffold.target_folder(project if project is not None else notebook.stem)
    name, package = scaffold.names(target)
    scaffold.check_target(target, force=force)
    c = convert(notebook)
    pipeline = f"pipelines/{c.module}.py"
    files = scaffold.render(name, package, pipeline=pipeline, notebook=notebook.name)
    for example in _EXAMPLE_FILES:
        files.pop(example.replace("<package>", package), None)
    files[f"src/{package}/{c.module}.py"] = c.script()
    files[pipeline] = c.pipeline_file(package)
    files["params.yaml"] = c.params_yaml()
    files["CONVERSION.md"] = c.report()
    files[f"tests/unit/test_{c.module}.py"] = _test_file(c, package)
    files[f"notebooks/{notebook.name}"] = notebook.read_text(encoding="utf-8")
    _tidy_code(files, [f"src/{package}/{c.module}.py", pipeline, f"tests/unit/test_{c.module}.py"])
    return scaffold.write(target, name, package, files, force=force, git=git, notes=c.problems)


def _tidy_code(files: dict[str, str], paths: list[str]) -> None:
    """Format the generated code and sort its imports with ruff, as the project's lint gate
    will check them, when ruff is installed (the notebook's own style issues stay for the
    lint gate to report)."""
    import subprocess
    import tempfile

    from triptych.scaffold.gates import ruff_command

    ruff = ruff_command()
    if ruff is None:
        return
    with tempfile.TemporaryDirectory(prefix="triptych-notebook-") as tmp:
        root = Path(tmp)
        for relative in [*paths, "pyproject.toml"]:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(files[relative], encoding="utf-8")
        for args in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
            subprocess.run(
                [*ruff, *args, *paths], cwd=root, capture_output=True, check=False, timeout=60
            )
        for relative in paths:
            files[relative] = (root / relative).read_text(encoding="utf-8")


def _test_file(c: Conversion, package: str) -> str:
    steps = sorted(s.name for s in c.sections)
    return (
        f'"""The converted notebook imports and its pipeline plans with params.yaml."""\n\n'
        "from __future__ import annotations\n\n"
        "from pathlib import Path\n\n"
        "from triptych.pipelines.pipeline import load\n\n"
        "ROOT = Path(__file__).resolve().parents[2]\n\n\n"
        "def test_the_pipeline_plans_every_step() -> None:\n"
        f'    plan = load(ROOT / "pipelines" / "{c.module}.py").plan()\n'
        f"    assert sorted(plan.graph.nodes) == {steps!r}\n\n\n"
        "def test_the_script_imports() -> None:\n"
        f"    from {package} import {c.module}\n\n"
        f"    assert callable({c.module}.main)\n"
    )
