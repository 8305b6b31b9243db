"""What every benchmark records about where it ran: the machine and triptych's version.

Imported lazily by the drivers (``from _machine import ...`` inside the function): the
benchmark scripts are run as ``python benchmarks/NAME.py``, which puts this folder on
``sys.path``, while their worker processes run copies of the scripts elsewhere and never
call these.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def triptych_version(untracked: str = "normal") -> str:
    """The version, with the git commit of the source when it runs from a checkout and
    ``+dirty`` when the package's files differ from it (``untracked``: git's
    ``--untracked-files`` mode for that check)."""
    import triptych

    folder = Path(triptych.__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return triptych.__version__
    dirty = git("status", "--porcelain", f"--untracked-files={untracked}", "--", ".")
    return f"{triptych.__version__} ({commit}{'+dirty' if dirty else ''})"


def machine_info(**extra: Any) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": cpu_model(),
        **extra,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
