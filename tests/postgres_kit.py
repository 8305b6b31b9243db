"""A private PostgreSQL server for tests that stop and start it (the shared one must stay up).

``initdb`` into a fresh folder, ``pg_ctl start`` on a free loopback port, ``stop`` and
``start`` again at will, and everything removed afterwards. As root (CI), the server runs as
the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from triptych.testing.process import free_port


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """One throw-away PostgreSQL cluster; ``url`` names its ``postgres`` database."""

    def __init__(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            reason = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
            if os.environ.get("CI"):
                pytest.fail(f"{reason}: CI may not skip the PostgreSQL restart tests")
            pytest.skip(reason)
        self._pg_ctl = pg_ctl
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="triptych-pg-"))
        self.data = self.folder / "data"
        if self._as:
            shutil.chown(self.folder, "postgres")
        self.port = free_port()
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(self._as + command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.folder / "server.log"
        data = str(self.data)
        self._run([self._pg_ctl, "-D", data, "-l", str(log), "-o", options, "-w", "start"])

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as in a server restart or failover."""
        self._run([self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
