"""Recreating a recorded environment in a fresh virtual environment, and running commands
with their output streamed (both for ``triptych reproduce``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triptych.errors import TriptychError
from triptych.store.entities import Environment
from triptych.tracking import fingerprint as fp

# ``report(kind, text)``: kind is "step" (what reproduce does), "output" (a line the re-run
# printed) or "pip" (a line of pip while rebuilding the environment).
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class PackageChange:
    """A package (or ``Python`` / ``platform``) whose version is not the recorded one."""

    name: str
    recorded: str | None
    current: str | None


def package_changes(recorded: Environment, current: Environment) -> list[PackageChange]:
    """Python, platform and every package whose version differs, was added or removed."""
    changes = [
        PackageChange(name, getattr(recorded, attr), getattr(current, attr))
        for name, attr in (("Python", "python"), ("platform", "platform"))
        if getattr(recorded, attr) != getattr(current, attr)
    ]
    for name in sorted(set(recorded.packages) | set(current.packages)):
        old, new = recorded.packages.get(name), current.packages.get(name)
        if old != new:
            changes.append(PackageChange(name, old, new))
    return changes


def build_environment(recorded: Environment, folder: Path, worktree: Path, say: Report) -> Path:
    """A fresh virtual environment with the recorded packages; returns its python.

    Packages are installed pinned (``name==version``, no dependency resolution: the list is
    complete), except the project in the worktree and packages installed from a local folder
    here (editable or not, e.g. triptych from its checkout), which install from source.
    Packages the new environment has beyond the list (pip's own companions) are removed."""
    base = _base_python(recorded.python)
    env = {k: v for k, v in os.environ.items() if k not in _OUTER_ENV}  # nothing from outside
    stream([base, "-m", "venv", str(folder)], None, env, say, "pip")
    python = bindir(folder) / ("python.exe" if os.name == "nt" else "python")
    local = _local_distributions()
    project = _project_name(worktree)
    pinned: list[str] = []
    sources: list[tuple[str, bool]] = []
    for name, version in recorded.packages.items():
        if name == project:
            sources.append((str(worktree), True))
        elif name in local:
            sources.append(local[name])
        else:
            pinned.append(f"{name}=={version}")
    pip = [str(python), "-m", "pip", "install", "--no-deps", "--progress-bar", "off"]
    if pinned:
        say("step", f"environment: pip install {len(pinned)} pinned packages")
        stream([*pip, *pinned], None, env, say, "pip")
    for path, editable in sources:
        say("step", f"environment: pip install {'-e ' if editable else ''}{path}")
        stream([*pip, *(["-e", path] if editable else [path])], None, env, say, "pip")
    listing = stream([str(python), "-c", _LIST_PACKAGES], folder, env, None, "pip")
    extra = sorted(set(json.loads(listing)) - set(recorded.packages))
    if extra:
        say("step", f"environment: removing {', '.join(extra)} (not in the recorded list)")
        stream([str(python), "-m", "pip", "uninstall", "-y", *extra], None, env, say, "pip")
    return python


def bindir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


_OUTER_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
_LIST_PACKAGES = (
    "import json, re, importlib.metadata as m; "
    "print(json.dumps(sorted({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() "
    "for d in m.distributions() if d.metadata['Name']})))"
)


def _base_python(version: str) -> str:
    """An interpreter of the recorded Python minor version when one is on PATH."""
    major_minor = ".".join(version.split(".")[:2])
    if ".".join(map(str, sys.version_info[:2])) == major_minor:
        return sys.executable
    return shutil.which(f"python{major_minor}") or sys.executable


def _local_distributions() -> dict[str, tuple[str, bool]]:
    """``{name: (folder, editable)}`` of distributions installed here from a local folder."""
    import importlib.metadata
    from urllib.parse import unquote, urlparse

    found: dict[str, tuple[str, bool]] = {}
    for dist in importlib.metadata.distributions():
        text = dist.read_text("direct_url.json")
        if not text or not dist.metadata["Name"]:
            continue
        info = json.loads(text)
        url = urlparse(info.get("url", ""))
        if url.scheme == "file" and "dir_info" in info:
            editable = bool(info["dir_info"].get("editable"))
            found[fp._normalise(dist.metadata["Name"])] = (unquote(url.path), editable)
    return found


def _project_name(folder: Path) -> str | None:
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return fp._normalise(name) if isinstance(name, str) else None


def stream(
    args: list[str],
    cwd: Path | None,
    env: Mapping[str, str] | None,
    say: Report | None,
    kind: str,
) -> str:
    """Run ``args``, passing every line it prints to ``say``; returns stdout. Raises
    TriptychError with the last lines when it fails."""
    tail: deque[str] = deque(maxlen=15)
    out: list[str] = []
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as e:
        raise TriptychError(f"cannot start {args[0]}: {e}") from e

    def pump(stream: Any, keep: list[str] | None) -> None:
        for line in stream:
            if keep is not None:
                keep.append(line)
            tail.append(line.rstrip("\n"))
            if say is not None:
                say(kind, line.rstrip("\n"))

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, None), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join(timeout=5)
    if code != 0:
        shown = " ".join(a if len(a) < 60 else a[:57] + "..." for a in args[:6])
        last = "\n".join(tail)
        raise TriptychError(
            f"{shown} exited with code {code}:\n{last}",
            hint="the output above shows why; --keep leaves the worktree to investigate",
        )
    return "".join(out)
