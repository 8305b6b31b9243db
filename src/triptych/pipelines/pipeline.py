"""``@pipeline``: a function calling steps, traced into a graph; and loading one from a file."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from triptych.errors import InvalidInput, NotFound
from triptych.pipelines import params as params_module
from triptych.pipelines.graph import Graph, Node
from triptych.pipelines.step import Output, tracing


class Pipeline:
    """A pipeline: ``trace()`` builds its graph; ``run()`` runs it (see ``runner.run``)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"

    @property
    def file(self) -> Path | None:
        source = inspect.getsourcefile(self.fn)
        return Path(source).resolve() if source else None

    def dynamic_reason(self) -> str | None:
        """Why the graph may differ from one trace to the next (the pipeline function, or a
        function of its file it calls, reads files, the environment, the clock or randomness),
        or None for a graph that only its code and parameters decide."""
        import types

        seen: set[str] = set()
        queue: list[Any] = [self.fn]
        namespace = self.fn.__globals__
        while queue:
            code = getattr(queue.pop(), "__code__", None)
            if code is None:
                continue
            names = _code_names(code)
            hit = sorted(names & _DYNAMIC)
            if hit:
                return f"uses {hit[0]}"
            for name in names - seen:
                seen.add(name)
                value = namespace.get(name)
                if isinstance(value, types.FunctionType) and value.__module__ == self.fn.__module__:
                    queue.append(value)
        return None

    def trace(self, arguments: Mapping[str, Any] | None = None) -> Graph:
        """The graph of step calls ``fn`` makes, given its own ``arguments``."""
        graph = Graph(self.name)
        token = tracing.set(graph)
        try:
            self.fn(**(arguments or {}))
        finally:
            tracing.reset(token)
        if not graph.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step", hint="call @step functions")
        return graph

    def plan(
        self, overrides: Mapping[str, Any] | None = None, params_file: Path | None = None
    ) -> Plan:
        """Trace with the parameters resolved: params.yaml next to the file, then overrides."""
        if params_file is None and self.file is not None:
            params_file = self.file.parent / params_module.PARAMS_FILE
        sections = params_module.read_file(params_file) if params_file else {}
        own = list(self.signature.parameters)
        args = dict(sections.get(self.name, {}))
        params_module.check_known({self.name: args}, {self.name: own}, str(params_file))
        graph = self.trace(args)  # the pipeline's own arguments may shape the graph
        owners: dict[str, list[str]] = {self.name: own}
        for node in graph:
            owners[node.name] = [a for a in node.step.signature.parameters if a not in node.inputs]
        params_module.check_known(sections, owners, str(params_file))
        merged = params_module.merge(sections, overrides or {}, owners)
        if merged.get(self.name, {}) != args:  # overridden: trace again with the new values
            args = merged[self.name]
            params_module.check_known({self.name: args}, {self.name: own}, "--param")
            graph = self.trace(args)
            for node in graph:
                owners[node.name] = [
                    a for a in node.step.signature.parameters if a not in node.inputs
                ]
            merged = params_module.merge(sections, overrides or {}, owners)
        resolved = {node.name: _resolve(node, merged.get(node.name, {})) for node in graph}
        if args:
            resolved = {self.name: dict(args), **resolved}
        return Plan(self, graph, resolved, params_file)

    def run(self, **options: Any) -> Any:
        """Run the pipeline (options as for :func:`triptych.pipelines.runner.run`)."""
        from triptych.pipelines.runner import run

        return run(self, **options)


@dataclass
class Plan:
    """A traced pipeline with every step's parameters resolved."""

    pipeline: Pipeline
    graph: Graph
    params: dict[str, dict[str, Any]]
    params_file: Path | None

    def step_params(self, node: str) -> dict[str, Any]:
        return self.params.get(node, {})


def _resolve(node: Node, given: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg, p in node.step.signature.parameters.items():
        if arg in node.inputs:
            continue
        if arg in given:
            out[arg] = given[arg]
        elif arg in node.constants:
            out[arg] = node.constants[arg]
        elif p.default is not inspect.Parameter.empty:
            out[arg] = p.default
        else:
            raise InvalidInput(
                f"step {node.name!r} needs the parameter {arg!r}",
                hint=f"set it in params.yaml under '{node.name}:' or pass "
                f"--param {node.name}.{arg}=VALUE",
            )
        params_module.canonical(out[arg])  # JSON or a clear error, before anything runs
    return out


_DYNAMIC = frozenset(
    [
        "environ",
        "getenv",
        "glob",
        "rglob",
        "iterdir",
        "listdir",
        "scandir",
        "walk",
        "open",
        "read_text",
        "read_bytes",
        "read_csv",
        "read_parquet",
        "read_json",
        "exists",
        "is_file",
        "is_dir",
        "stat",
        "time",
        "now",
        "today",
        "random",
        "randint",
        "choice",
        "shuffle",
        "uuid4",
        "input",
        "urlopen",
        "request",
    ]
)


def _code_names(code: Any) -> set[str]:
    import types

    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


@overload
def pipeline(fn: Callable[..., Any]) -> Pipeline: ...


@overload
def pipeline(fn: None = None, *, name: str | None = None) -> Callable[..., Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, *, name: str | None = None
) -> Pipeline | Callable[..., Pipeline]:
    """Make ``fn`` a pipeline: the steps it calls, and the outputs it passes between them,
    are its graph. Its own arguments come from the params.yaml section named after it."""
    if fn is not None:
        return Pipeline(fn, name)
    return lambda f: Pipeline(f, name)


def _module_name(path: Path) -> str:
    return "triptych_pipeline_" + re.sub(r"\W", "_", path.stem)


def import_file(path: Path) -> Any:
    """Import a pipeline file as a module (its folder on ``sys.path``, as for a script)."""
    path = path.resolve()
    name = _module_name(path)
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    existing = sys.modules.get(name)
    if (
        existing is not None
        and getattr(existing, "__file__", None) == str(path)
        and getattr(existing, "__triptych_stamp__", None) == stamp
    ):
        return existing  # unchanged since imported: tracing again is enough
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} is not a Python file", hint="give a .py file")
    module = importlib.util.module_from_spec(spec)
    module.__triptych_stamp__ = stamp  # type: ignore[attr-defined]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load(target: str | Path) -> Pipeline:
    """The pipeline in ``target``: ``path/to/file.py`` (its one ``@pipeline``) or
    ``path/to/file.py:function``."""
    text = str(target)
    attr = None
    if ":" in text and not Path(text).exists():
        text, _, attr = text.rpartition(":")
    path = Path(text)
    if not path.is_file():
        raise NotFound(
            f"no pipeline file at {path}", hint="give the .py file that defines the @pipeline"
        )
    module = import_file(path)
    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if attr is not None:
        if attr not in found:
            raise NotFound(
                f"{path} has no @pipeline named {attr!r}",
                hint=f"pipelines in it: {', '.join(sorted(found)) or '(none)'}",
            )
        return found[attr]
    if len(found) != 1:
        raise InvalidInput(
            f"{path} defines {len(found)} @pipeline functions",
            hint="name one: " + (f"{path}:{next(iter(sorted(found)))}" if found else "add one"),
        )
    return next(iter(found.values()))


__all__ = ["Output", "Pipeline", "Plan", "import_file", "load", "pipeline"]
