"""``triptych init``: a new project that passes its own tests and CI gates at once.

The files are Jinja2 templates shipped in ``scaffold/templates/project/`` (``__package__`` in
a path becomes the package name, ``dot-`` a leading dot, ``.j2`` is dropped; the delimiters
are ``<< >>`` and ``<% %>`` so that GitHub's ``${{ }}`` and Python braces stay literal).
Everything is rendered into a temporary folder beside the target and moved into place only
when complete, so an error leaves nothing half-written; an existing file is never replaced.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import AlreadyExists, InvalidInput

TEMPLATES = "templates"
PROJECT_TEMPLATE = "project"
PIPELINE = "pipelines/training.py"
PARAMS_LINK = "pipelines/params.yaml"  # a link to ../params.yaml: what `pipeline run` reads
_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# Package names that would shadow what the project imports, or the project's own folders.
_RESERVED = {
    "triptych",
    "tests",
    "test",
    "src",
    "pipelines",
    "sklearn",
    "pandas",
    "numpy",
    "scipy",
    "yaml",
    "pytest",
    "setuptools",
}


@dataclass
class Scaffolded:
    """What ``init`` wrote: the folder, the names it derived and every file."""

    path: str
    name: str
    package: str
    files: list[str]
    skipped: list[str] = field(default_factory=list)  # existing files left as they were
    git: str = ""  # "initialised", or why not
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def names(project: str | Path) -> tuple[str, str]:
    """The distribution name and the Python package name for the folder ``project``:
    ``my-model`` → ``("my-model", "my_model")``; InvalidInput for a name that cannot be both."""
    name = Path(project).name
    if not _NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid project name",
            hint="start with a letter; use letters, digits, '-', '_' or '.', e.g. churn-model",
        )
    package = re.sub(r"[-.]+", "_", name).lower()
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    if (
        not package.isidentifier()
        or keyword.iskeyword(package)
        or package in _RESERVED
        or package in stdlib
    ):
        raise InvalidInput(
            f"the project name {name!r} gives the package {package!r}, which would shadow "
            "a module of Python, triptych or the project",
            hint=f"choose another name, e.g. {name}-model",
        )
    return name, package


def environment() -> Any:
    """The Jinja2 environment of the templates shipped in this package."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("triptych.scaffold", TEMPLATES),
        variable_start_string="<<",
        variable_end_string=">>",
        block_start_string="<%",
        block_end_string="%>",
        comment_start_string="<#",
        comment_end_string="#>",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # source files, not HTML
    )


def output_path(template: str, package: str) -> str:
    """Where a template lands in the project (relative, with '/')."""
    parts = []
    for part in template.split("/"):
        part = part.replace("__package__", package)
        if part.startswith("dot-"):
            part = "." + part[len("dot-") :]
        parts.append(part)
    out = "/".join(parts)
    return out[: -len(".j2")] if out.endswith(".j2") else out


def render(
    name: str, package: str, *, template: str = PROJECT_TEMPLATE, **context: Any
) -> dict[str, str]:
    """Every file of the project template, rendered: relative path → text."""
    from triptych import __version__

    env = environment()
    values = {
        "name": name,
        "package": package,
        "pipeline": PIPELINE,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "triptych_version": __version__,
        "notebook": "",  # the source notebook, for a project made by --from-notebook
        **context,
    }
    prefix = f"{template}/"
    files: dict[str, str] = {}
    for t in env.list_templates():
        if t.startswith(prefix):
            files[output_path(t[len(prefix) :], package)] = env.get_template(t).render(values)
    return files


def check_target(target: Path, *, force: bool) -> None:
    """Refuse a file, or a non-empty folder unless ``force``."""
    if target.exists() and not target.is_dir():
        raise AlreadyExists(f"{target} exists and is not a folder", hint="give a new folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise AlreadyExists(
            f"the folder {target} is not empty",
            hint="give a new folder, or --force to add the files it lacks (existing files "
            "are kept)",
        )


def target_folder(project: str | Path) -> Path:
    """The absolute folder ``project`` names, ``..`` resolved once (so ``a/../x`` creates no
    ``a``); InvalidInput for a path the file system cannot hold (NUL)."""
    if "\x00" in os.fspath(project):
        raise InvalidInput(f"the project path {os.fspath(project)!r} contains NUL")
    return Path(os.path.abspath(Path(project).expanduser()))


def init(project: str | Path, *, force: bool = False, git: bool = True) -> Scaffolded:
    """Scaffold the default project (the diabetes + Ridge example) into ``project``."""
    target = target_folder(project)
    name, package = names(target)
    check_target(target, force=force)
    return write(target, name, package, render(name, package), force=force, git=git)


def write(
    target: Path,
    name: str,
    package: str,
    files: Mapping[str, str],
    *,
    force: bool = False,
    git: bool = True,
    notes: list[str] | None = None,
) -> Scaffolded:
    """Write ``files`` (relative path → text) into ``target``: first into a temporary folder
    beside it, then moved into place; files that already exist are kept and listed."""
    check_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.triptych-init-", dir=target.parent))
    try:
        for relative, text in sorted(files.items()):
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        links = _link_params(tmp, files)
        git_state = _git_init(tmp, target) if git else "not asked (--no-git)"
        skipped = _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    written = sorted(set(files) | set(links))
    return Scaffolded(
        str(target),
        name,
        package,
        [f for f in written if f not in skipped],
        skipped,
        git_state,
        list(notes or []),
    )


def _link_params(tmp: Path, files: Mapping[str, str]) -> list[str]:
    """``pipelines/params.yaml`` → ``../params.yaml``, so the pipelines read the root file."""
    if "params.yaml" not in files or PARAMS_LINK in files or not (tmp / "pipelines").is_dir():
        return []
    try:
        os.symlink(os.path.join("..", "params.yaml"), tmp / PARAMS_LINK)
    except OSError:  # no symlinks here (e.g. Windows without the privilege): a copy
        shutil.copyfile(tmp / "params.yaml", tmp / PARAMS_LINK)
    return [PARAMS_LINK]


def _inside_git(folder: Path) -> bool:
    return any((p / ".git").exists() for p in (folder, *folder.parents))


def _git_init(tmp: Path, target: Path) -> str:
    """``git init`` the new project (its runs then record the code leg of the fingerprint)."""
    if _inside_git(target if target.exists() else target.parent):
        return "inside a git repository already"
    git = shutil.which("git")
    if git is None:
        return "git is not installed"
    done = subprocess.run(
        [git, "-c", "init.defaultBranch=main", "init", "-q", str(tmp)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"git init failed: {(done.stderr or done.stdout).strip()[:200]}"
    return "initialised"


def _public(folder: Path) -> None:
    """A project folder gets the usual mode (0777 less the umask), not the 0700 of the
    private temporary folder it was written in."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)


def _move_into_place(tmp: Path, target: Path) -> list[str]:
    """Rename the whole folder when the target is new (atomic); otherwise move each file that
    does not exist yet. Returns the files kept because they existed."""
    if not target.exists():
        os.replace(tmp, target)
        _public(target)
        return []
    if not any(target.iterdir()):
        target.rmdir()
        os.replace(tmp, target)
        _public(target)
        return []
    skipped: list[str] = []
    for path in sorted(tmp.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(tmp).as_posix()
        dest = target / relative
        if relative.startswith(".git/") and (target / ".git").exists():
            continue
        if dest.exists() or dest.is_symlink():
            skipped.append(relative)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    return skipped
