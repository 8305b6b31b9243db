"""Cache keys: a step re-runs only when its code, parameters, inputs or environment change.

The code part is the step function's source plus the source of every *project* module it
reaches: the modules its globals come from, and the project modules those import, found
through their namespaces. Installed packages are not read here: they are the environment part.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import sys
import sysconfig
import threading
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from triptych.pipelines import params as params_module

_lock = threading.Lock()
_file_digests: dict[str, tuple[tuple[int, int], str]] = {}


def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


def _file_digest(path: str) -> str:
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        cached = _file_digests.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with _lock:
        _file_digests[path] = (stamp, digest)
    return digest


_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<src>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#]+)"
    r"|import[ \t]+(?P<mods>[^\n#]+))",
    re.MULTILINE,
)
_scan_cache: dict[str, tuple[tuple[int, int], list[str]]] = {}


def _imports(file: str) -> list[str]:
    """Module names a source file imports, read statically (function-level imports too), so
    the result does not depend on what happens to be imported already."""
    st = os.stat(file)
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _scan_cache.get(file)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    text = Path(file).read_text(encoding="utf-8", errors="replace")
    package = _package_of(file)
    found: list[str] = []
    for m in _IMPORT.finditer(text):
        if m["mods"]:
            found += [part.split()[0] for part in m["mods"].split(",") if part.strip()]
            continue
        src = m["src"] or ""
        if src.startswith("."):
            dots = len(src) - len(src.lstrip("."))
            parts = package.split(".") if package else []
            base = parts[: len(parts) - dots + 1] if dots <= len(parts) else []
            src = ".".join([*base, src.lstrip(".")]).strip(".")
        names = m["names"].strip("() \n")
        found.append(src)
        found += [f"{src}.{n.split()[0]}" for n in names.replace("\n", " ").split(",") if n.strip()]
    _scan_cache[file] = (stamp, found)
    return found


def _package_of(file: str) -> str:
    """Dotted package of a file, from the ``__init__.py`` files above it."""
    parts: list[str] = []
    folder = Path(file).parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


_found: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


def _find_file(
    name: str, root: str, installed: tuple[str, ...], search: tuple[str, ...]
) -> str | None:
    """The project file of module ``name`` (without importing it), or None."""
    key = (name, root, search)
    if key not in _found:
        _found[key] = _search(name, root, installed, search)
    return _found[key]


def _search(
    name: str, root: str, installed: tuple[str, ...], search: tuple[str, ...]
) -> str | None:
    rel = name.replace(".", os.sep)
    for entry in search:
        base = os.path.abspath(entry or ".")
        for candidate in (os.path.join(base, rel + ".py"), os.path.join(base, rel, "__init__.py")):
            if os.path.isfile(candidate):
                real = os.path.realpath(candidate)
                if real.startswith(root) and not real.startswith(installed):
                    return real
                return None
    return None


def project_files(start: str, project_root: Path) -> list[str]:
    """The project files ``start`` reaches through imports, read statically (``start``
    excluded), looked up as Python would once ``start``'s folder is on ``sys.path``."""
    root = os.path.realpath(project_root) + os.sep
    installed = _installed_roots()
    folder = os.path.dirname(start)
    search = tuple(dict.fromkeys([folder, *(os.path.abspath(p or ".") for p in sys.path)]))
    files: set[str] = set()
    queue = [start]
    while queue:
        file = queue.pop()
        for name in _imports(file):
            found = _find_file(name, root, installed, search)
            if found is not None and found not in files and found != start:
                files.add(found)
                queue.append(found)
    return sorted(files)


def _names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _own_sources(fn: Any, namespace: Mapping[str, Any]) -> list[str]:
    """Source of ``fn`` and of the functions, classes and constants of its own module that it
    uses by name (recursively), so editing another step in the same file changes nothing."""
    from triptych.pipelines.step import Step

    parts: list[str] = []
    seen: set[str] = set()
    queue: list[Any] = [fn]
    while queue:
        obj = queue.pop()
        code = getattr(obj, "__code__", None)
        try:
            parts.append(inspect.getsource(obj))
        except (OSError, TypeError):
            parts.append(code.co_code.hex() if code is not None else repr(obj))
        if code is None:
            continue
        for name in sorted(_names(code) - seen):
            seen.add(name)
            value = namespace.get(name)
            if value is None or isinstance(value, (Step, types.ModuleType)):
                continue
            if getattr(value, "__module__", None) != fn.__module__:
                continue
            if isinstance(value, (types.FunctionType, type)):
                queue.append(value)
        for name in sorted(_names(code)):
            value = namespace.get(name)
            if isinstance(value, (str, int, float, bool, bytes, tuple, frozenset)):
                parts.append(f"{name}={value!r}")
    return parts


def code_digest(fn: Any, project_root: Path) -> str:
    """Digest of ``fn``'s source and of the project code it depends on."""
    from triptych.pipelines.step import Step

    if isinstance(fn, Step):
        fn = fn.fn
    root = os.path.realpath(project_root)
    h = hashlib.sha256()
    for part in _own_sources(fn, fn.__globals__):
        h.update(part.encode() + b"\0")
    own_file = os.path.realpath(inspect.getsourcefile(fn) or "")
    files = project_files(own_file, project_root) if os.path.isfile(own_file) else []
    for file in files:
        h.update(f"\0{os.path.relpath(file, root)}\0{_file_digest(file)}".encode())
    return h.hexdigest()


def pipeline_lock(
    file: Path,
    project_root: Path,
    *,
    function: str,
    params_file: Path | None,
    overrides: Mapping[str, Any],
    env: str,
) -> str:
    """Digest of everything a pipeline run's graph and cache keys derive from, computed
    without importing the file: the file and the project files it imports, its params file,
    the overrides, the environment. Equal locks mean equal keys for every step."""
    root = os.path.realpath(project_root)
    start = os.path.realpath(file)
    h = hashlib.sha256(f"function:{function}\nenv:{env}\n".encode())
    for path in [start, *project_files(start, project_root)]:
        h.update(f"file:{os.path.relpath(path, root)}={_file_digest(path)}\n".encode())
    if params_file is not None and params_file.is_file():
        h.update(f"params:{_file_digest(str(params_file.resolve()))}\n".encode())
    for key in sorted(overrides):
        h.update(f"override:{key}={params_module.canonical(overrides[key])}\n".encode())
    return h.hexdigest()


def cache_key(
    *,
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    env: str,
    outputs: tuple[str, ...],
) -> str:
    """The digest of everything a step's results depend on."""
    h = hashlib.sha256()
    h.update(f"code:{code}\nenv:{env}\noutputs:{','.join(outputs)}\n".encode())
    for key in sorted(params):
        h.update(f"param:{key}={params_module.canonical(params[key])}\n".encode())
    for key in sorted(inputs):
        h.update(f"input:{key}={inputs[key]}\n".encode())
    return h.hexdigest()
