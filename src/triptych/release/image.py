"""``triptych build-image``: a Docker build context that serves one model, and its build.

The context holds only what the image needs, each file written by this module:

- ``Dockerfile`` — ``python:<the model's Python>-slim``, a non-root user, the server on 8080;
- ``requirements.txt`` — every distribution pinned to the version in the environment the
  model was trained in (the run's recorded environment), else the version installed here;
- ``model/`` — the model folder (manifest, model file, input example), digests verified;
- ``triptych/`` — this triptych's own source (its Python files), so the image runs the same
  code that was tested, whether or not this version is published.

Nothing else is copied: no settings, no store URLs, no environment variables, so no secret
can end up in an image layer. The image carries its own small store (``boot.py``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, TriptychError

if TYPE_CHECKING:
    from triptych.tracking.client import Client

PORT = 8080
DEFAULT_PYTHON = "3.11"
MODEL_DIR = "model"
PACKAGE_DIR = "triptych"
# What the server needs beyond triptych's declared dependencies (kept here so that an
# editable install whose metadata predates them still pins them).
SERVING = ("uvicorn[standard]", "orjson", "prometheus-client")
_TAG = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$"
)
_SOURCE_SUFFIXES = (".py", ".typed", ".mako", ".ini", ".sql", ".json", ".html", ".css", ".js")


@dataclass
class ImageResult:
    """Where the context was written, what it pins, and whether an image was built."""

    model_uri: str
    tag: str
    context: str
    requirements: list[str]
    built: bool
    reason: str | None = None  # why it was not built

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_image(
    model_uri: str,
    tag: str,
    *,
    context: str | Path | None = None,
    build: bool = True,
    client: Client | None = None,
) -> ImageResult:
    """Write the build context for ``model_uri`` and, when ``build`` and docker is usable,
    run ``docker build -t tag``."""
    if not _TAG.match(tag):
        raise InvalidInput(
            f"{tag!r} is not a valid image name",
            hint="e.g. diabetes:3 or registry.local/team/diabetes:3",
        )
    result = write_context(model_uri, tag, Path(context) if context else None, client=client)
    folder = result.context
    if not build:
        result.reason = "--no-build"
        return result
    problem = docker_problem()
    if problem:
        result.reason = problem
        return result
    done = subprocess.run(
        ["docker", "build", "-t", tag, str(folder)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise TriptychError(
            f"docker build failed: {last[0]}", hint=f"see: docker build -t {tag} {folder}"
        )
    result.built = True
    return result


def docker_problem() -> str | None:
    """Why docker cannot build here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"docker does not answer: {e}"
    return None if info.returncode == 0 else "the docker daemon is not reachable"


def write_context(
    model_uri: str, tag: str, folder: Path | None = None, *, client: Client | None = None
) -> ImageResult:
    """Write the build context into ``folder`` (new or empty; default: a new temp folder)."""
    import tempfile

    from triptych.artifacts import paths
    from triptych.models.manifest import MANIFEST_FILE, Manifest
    from triptych.models.model import _client, resolve
    from triptych.uris import parse_runs_uri

    c = _client(client)
    if folder is not None and folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(
            f"the context folder {folder} is not empty", hint="give a new or empty --context"
        )
    runs_uri = resolve(model_uri, client=c)
    ref = parse_runs_uri(runs_uri)
    model_path = paths.normalise(ref.path)
    manifest = Manifest.from_json(
        c.read_artifact(ref.run_id, f"{model_path}/{MANIFEST_FILE}"), runs_uri
    )
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="triptych-image-"))
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    # The model files: each destination is checked to stay inside the context.
    for entry in c.store.walk_artifacts(ref.run_id, model_path):
        relative = entry.path[len(model_path) :].lstrip("/")
        target = paths.inside(root, f"{MODEL_DIR}/{relative}")
        assert entry.digest is not None
        c.artifacts.download(entry.digest, target)
    _copy_package(paths.inside(root, PACKAGE_DIR))
    packages = _recorded_packages(c, manifest.environment_digest)
    requirements = pinned_requirements(manifest.requirements, packages)
    (root / "requirements.txt").write_text(
        f"# pinned from the environment of run {manifest.run_id} ({runs_uri})\n"
        + "".join(f"{r}\n" for r in requirements),
        encoding="utf-8",
    )
    python = _python(manifest.python)
    (root / "Dockerfile").write_text(
        dockerfile(python, ref.run_id, model_path, model_uri), encoding="utf-8"
    )
    (root / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    return ImageResult(model_uri, tag, str(root), requirements, built=False)


def _python(recorded: str | None) -> str:
    """The model's Python as ``major.minor`` (the base image's tag)."""
    if recorded:
        m = re.match(r"^(\d+)\.(\d+)", recorded)
        if m:
            return f"{m[1]}.{m[2]}"
    return DEFAULT_PYTHON


def _recorded_packages(c: Client, digest: str | None) -> dict[str, str]:
    if not digest:
        return {}
    try:
        return dict(c.get_environment(digest).packages)
    except TriptychError:
        return {}


def pinned_requirements(model_requirements: tuple[str, ...], recorded: dict[str, str]) -> list[str]:
    """``name==version`` for the model's needs, triptych's dependencies and the server's:
    versions from the model's environment first, this machine's second."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted: dict[str, Requirement] = {}
    declared = md.requires("triptych") or []
    for text in [*model_requirements, *declared, *SERVING]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = str(canonicalize_name(req.name))
        if name == "triptych":
            continue
        if name in wanted:
            wanted[name].extras |= req.extras
        else:
            wanted[name] = req
    out = []
    for key, req in sorted(wanted.items()):
        version = recorded.get(key) or _installed(key)
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        out.append(f"{key}{extras}=={version}" if version else f"{key}{extras}{req.specifier}")
    return out


def _installed(name: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _copy_package(target: Path) -> None:
    """triptych's source files (no caches, no compiled files) into ``target``."""
    import triptych

    source = Path(triptych.__file__).resolve().parent
    for file in sorted(source.rglob("*")):
        if not file.is_file() or "__pycache__" in file.parts or file.suffix not in _SOURCE_SUFFIXES:
            continue
        dest = target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, dest)


def dockerfile(python: str, run_id: str, model_path: str, source: str) -> str:
    """The Dockerfile: dependencies first (a cached layer), then code, then the model."""
    served = f"runs:/{run_id}/{model_path}"
    boot = [
        "python",
        "-m",
        "triptych.release.boot",
        f"/srv/{MODEL_DIR}",
        run_id,
        model_path,
        source,
    ]
    serve = ["python", "-m", "triptych", "serve", served, "--host", "0.0.0.0", "--port", str(PORT)]
    health = (
        "import urllib.request,sys; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{PORT}/ready').status != 200)"
    )
    return "\n".join(
        [
            f"# triptych build-image {source}",
            f"FROM python:{python}-slim",
            "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\",
            "    PYTHONPATH=/app TRIPTYCH_HOME=/srv/triptych",
            "RUN useradd --create-home --uid 10001 triptych",
            "WORKDIR /app",
            "COPY requirements.txt /app/requirements.txt",
            "RUN pip install --no-cache-dir -r /app/requirements.txt",
            f"COPY {PACKAGE_DIR} /app/{PACKAGE_DIR}",
            f"COPY {MODEL_DIR} /srv/{MODEL_DIR}",
            f"RUN {shlex.join(boot)} && chown -R triptych /srv/triptych",
            "USER triptych",
            f"EXPOSE {PORT}",
            f"HEALTHCHECK --interval=10s --timeout=3s CMD {json.dumps(['python', '-c', health])}",
            f"CMD {json.dumps(serve)}",
            "",
        ]
    )
