"""The triptych of a run — code, environment, data — and the digest that binds them.

Capturing must be cheap, because every run does it: the environment is read once per process
(and again only when a site-packages folder changes), the git state at most once per
:data:`CODE_TTL` seconds, and data digests stream through the bytes once.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, NotFound
from triptych.store.entities import CodeState, DataInput, Environment

CODE_TTL = 2.0
DIFF_ARTIFACT = "_triptych/code.diff"
_lock = threading.Lock()
_env_cache: tuple[tuple[Any, ...], Environment] | None = None
_code_cache: dict[tuple[str, str], tuple[float, tuple[Any, ...], CodeState, bytes]] = {}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def combine(code_digest: str, env_digest: str, data_digests: Iterable[str]) -> tuple[str, str]:
    """``(data_digest, fingerprint)``: inputs in any order give the same digests."""
    data_digest = sha256_text("\n".join(sorted(set(data_digests))))
    fingerprint = sha256_text(f"code:{code_digest}\nenv:{env_digest}\ndata:{data_digest}")
    return data_digest, fingerprint


# -- environment ---------------------------------------------------------------------------------
_DIST = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+?)\.(?:dist|egg)-info$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _scan_packages(paths: Iterable[str]) -> dict[str, str]:
    """Installed distributions from their ``*.dist-info`` folder names (no file reads).

    The first entry on ``sys.path`` wins, as it does for imports."""
    found: dict[str, str] = {}
    for folder in paths:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                m = _DIST.match(entry.name)
                if m:
                    found.setdefault(_normalise(m["name"]), m["version"])
    return dict(sorted(found.items()))


def environment() -> Environment:
    """Python, platform and the exact installed distributions, cached per process."""
    global _env_cache
    key = tuple((p, _mtime(p)) for p in sys.path)
    with _lock:
        if _env_cache is not None and _env_cache[0] == key:
            return _env_cache[1]
    packages = _scan_packages(sys.path)
    python = platform.python_version()
    plat = f"{platform.system()}-{platform.release()}-{platform.machine()}"
    payload = json.dumps(
        {
            "python": python,
            "implementation": sys.implementation.name,
            "platform": plat,
            "packages": packages,
        },
        sort_keys=True,
    )
    env = Environment(sha256_text(payload), python, plat, packages)
    with _lock:
        _env_cache = (key, env)
    return env


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return 0


# -- code ----------------------------------------------------------------------------------------
def entry_point() -> str:
    """What started this process: the script path, ``-m module``, or ``<interactive>``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name not in ("__main__", None):
        return f"-m {spec.name}"
    script = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    if not script or script in ("-c", "-", "<stdin>") or script.endswith("<stdin>"):
        return "<interactive>"
    return str(Path(script).resolve())


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def code_state(cwd: str | None = None) -> tuple[CodeState, bytes]:
    """The code leg and the uncommitted diff (``b""`` when clean or outside git).

    Cached for :data:`CODE_TTL` seconds per folder and entry point, and dropped sooner when
    git's HEAD or index changes, so a loop of many runs asks git once."""
    entry = entry_point()
    if cwd is None:
        # The checkout we run in; outside any, the entry script's own checkout (for
        # `python ~/project/train.py` started from elsewhere).
        cwd = os.getcwd()
        script_dir = os.path.dirname(entry) if os.path.isfile(entry) else ""
        if not _git_files_key(cwd) and script_dir and _git_files_key(script_dir):
            cwd = script_dir
    cwd = os.path.abspath(cwd)
    key = (cwd, entry)
    files = _git_files_key(cwd)
    now = time.monotonic()
    with _lock:
        cached = _code_cache.get(key)
    if cached is not None and now - cached[0] < CODE_TTL and cached[1] == files:
        return cached[2], cached[3]
    state, diff = _read_code_state(cwd, entry)
    with _lock:
        _code_cache[key] = (now, files, state, diff)
    return state, diff


def _git_files_key(cwd: str) -> tuple[Any, ...]:
    """Stat of the files git changes on commit, checkout and add: cheap change detection."""
    folder = Path(cwd)
    for candidate in (folder, *folder.parents):
        git = candidate / ".git"
        if git.exists():
            return (str(candidate), *(_mtime(str(git / n)) for n in ("HEAD", "index")))
    return ()


def _read_code_state(cwd: str, entry: str) -> tuple[CodeState, bytes]:
    head = _git(["rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"], cwd)
    commit = branch = remote = None
    diff = b""
    if head is not None and head.returncode == 0:
        lines = head.stdout.decode().splitlines()
        top, commit, branch = lines[0], lines[1], lines[2]
        if branch == "HEAD":
            branch = None  # detached
        got = _git(["config", "--get", "remote.origin.url"], cwd)
        if got is not None and got.returncode == 0:
            remote = _strip_credentials(got.stdout.decode().strip())
        got = _git(["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], cwd)
        if got is not None and got.returncode == 0:
            diff = got.stdout
        if entry.startswith("/") and entry.startswith(top + "/"):
            entry = os.path.relpath(entry, top)
    diff_digest = hashlib.sha256(diff).hexdigest() if diff else None
    digest = sha256_text(json.dumps({"commit": commit, "diff": diff_digest, "entry": entry}))
    return CodeState(commit, branch, remote, entry, diff_digest, digest), diff


def _strip_credentials(url: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x``: secrets never reach the store."""
    return re.sub(r"^(\w+://)[^/@]+@", r"\1", url)


# -- command line --------------------------------------------------------------------------------
ARGV_TAG = "triptych.source.argv"  # JSON list of sys.argv[1:], secrets redacted
REDACTED = "***"
_SECRET_FLAG = re.compile(r"password|passwd|token|secret|key|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^(\w[\w+.-]*://[^/@:]*:)[^/@]+@")


def command_args(argv: Sequence[str] | None = None) -> list[str]:
    """``sys.argv[1:]`` as recorded with a run, values of secret-looking flags redacted.

    ``--token x`` and ``--api-key=x`` (any flag whose name contains password, token, secret,
    key or credential) become ``--token ***`` and ``--api-key=***``; a password in a URL
    (``scheme://user:pw@host``) becomes ``scheme://user:***@host``."""
    out: list[str] = []
    secret_value_next = False
    for arg in sys.argv[1:] if argv is None else argv:
        if secret_value_next and not arg.startswith("-"):
            out.append(REDACTED)
            secret_value_next = False
            continue
        secret_value_next = False
        if arg.startswith("-") and arg.strip("-"):
            name, eq, _ = arg.lstrip("-").partition("=")
            if _SECRET_FLAG.search(name):
                if eq:
                    out.append(arg.partition("=")[0] + "=" + REDACTED)
                    continue
                secret_value_next = True
        out.append(_URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", arg))
    return out


def redacted_args(args: Sequence[str]) -> list[str]:
    """The arguments of ``args`` (as :func:`command_args` recorded them) that were redacted."""
    found = []
    for i, arg in enumerate(args):
        if arg == REDACTED:
            found.append(args[i - 1] if i else arg)
        elif arg.endswith("=" + REDACTED) or f":{REDACTED}@" in arg:
            found.append(arg)
    return found


# -- data ----------------------------------------------------------------------------------------
def describe_input(obj: Any, name: str | None = None) -> DataInput:
    """Digest, rows and schema of a DataFrame, an array, or a file or folder on disk."""
    if isinstance(obj, (str, os.PathLike)):
        return _describe_path(Path(obj), name)
    module = type(obj).__module__.split(".", 1)[0]
    if module == "pandas":
        return _describe_frame(obj, name or "dataframe")
    if module == "numpy":
        import numpy as np

        arr = np.ascontiguousarray(obj)
        h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
        return DataInput(
            name or "array",
            h.hexdigest(),
            rows=int(arr.shape[0]) if arr.ndim else 1,
            schema={"dtype": str(arr.dtype), "shape": str(arr.shape)},
        )
    raise InvalidInput(
        f"cannot log {type(obj).__name__} as a data input",
        hint="pass a pandas DataFrame, a numpy array, or a file/folder path",
    )


def _describe_frame(df: Any, name: str) -> DataInput:
    import pandas as pd

    h = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    schema = {str(c): str(t) for c, t in df.dtypes.items()}
    return DataInput(name, h.hexdigest(), rows=len(df), schema=schema, source="dataframe")


def _describe_path(path: Path, name: str | None) -> DataInput:
    from triptych.artifacts.base import digest_file

    if not path.exists():
        raise NotFound(f"no file or folder at {path}")
    source = str(path.resolve())
    if path.is_dir():
        h = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{file.relative_to(path).as_posix()}\0{digest_file(file).digest}\n".encode())
        return DataInput(name or path.name, h.hexdigest(), source=source)
    rows, schema = _table_shape(path)
    return DataInput(name or path.name, digest_file(path).digest, rows, schema, source)


def _table_shape(path: Path) -> tuple[int | None, dict[str, str] | None]:
    """Rows and column types of Parquet (from its footer) and CSV (streamed) files."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            return meta.metadata.num_rows, {f.name: str(f.type) for f in meta.schema_arrow}
        if suffix in (".csv", ".tsv"):
            import pyarrow.csv as pacsv

            parse = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            reader = pacsv.open_csv(path, parse_options=parse)
            rows = sum(batch.num_rows for batch in reader)
            return rows, {f.name: str(f.type) for f in reader.schema}
    except Exception:  # an unreadable table is still a file with a digest
        return None, None
    return None, None
