"""Servers in subprocesses, for tests and benchmarks: a free loopback port, output to a file
(a pipe nobody reads fills up and blocks the server), ready once a path answers 200, stopped
with SIGINT so that it shuts down as it would for a user."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP_SECONDS = 90


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``TRIPTYCH_*`` setting, with ``home`` as the
    triptych home and unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.update(TRIPTYCH_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def wait_ready(url: str, proc: subprocess.Popen[str] | None = None) -> None:
    """Until ``url`` answers 200; raises when ``proc`` exits first or after the start-up time."""
    import httpx

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {STARTUP_SECONDS} s")


class ServerProcess:
    """``python ARGS --port N`` in ``cwd`` with ``env``; ready when ``ready`` answers 200."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], ready: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.what = " ".join(args[:3])
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            mode="w+", prefix="triptych-server-", suffix=".log"
        )
        self.proc = subprocess.Popen(
            [sys.executable, *args, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(self.url + ready, self.proc)
        except Exception:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{self.what} did not start: {self.output()}") from None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """Stop gracefully (a model server writes its prediction log); what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.output()
        self.log.close()
        return out
