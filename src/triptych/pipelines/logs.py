"""Capture what a step prints and logs, per thread, so parallel steps keep separate logs."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


class _Router(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes go to the current thread's capture, if any."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is None:
            return self.original.write(text)
        return buffer.write(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self.original.flush()

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.write(self.format(record) + "\n")
        elif (
            record.levelno >= logging.WARNING
            and logging.getLogger().handlers == [self]
            and logging.lastResort is not None
        ):
            # outside a step, keep Python's default: warnings with no handler go to stderr
            logging.lastResort.handle(record)


def _install() -> None:
    global _installed
    with _install_lock:
        # checked each time: something else (a test runner, a notebook) may swap the streams
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)
        if _installed:
            return
        handler = _Handler(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)  # a step's logger.info(...) belongs in its log
        _installed = True


@contextmanager
def capture() -> Iterator[io.StringIO]:
    """Collect this thread's prints and log records (INFO and up) while the block runs."""
    _install()
    previous = getattr(_local, "buffer", None)
    buffer = io.StringIO()
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = previous
