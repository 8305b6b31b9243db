"""The progress bar of a search: trials done, best so far, time left (rich, on stderr)."""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any


class Progress:
    """A no-op unless ``enabled``; ``update`` is safe from any thread."""

    def __init__(self, enabled: bool | None, budget_s: float, deadline: float, metric: str):
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.budget_s = budget_s
        self.deadline = deadline
        self.metric = metric
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        deadline = self.deadline

        class TimeLeft(ProgressColumn):
            def render(self, task: Any) -> Text:
                left = max(0.0, deadline - time.time())
                return Text(f"{left:5.1f}s left", style="cyan")

        from rich.console import Console

        self._bar = Progress(
            TextColumn("[bold]automl[/]"),
            BarColumn(),
            TimeLeft(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("starting", total=self.budget_s)
        return self

    def update(self, done: int, pruned: int, failed: int, best: float | None) -> None:
        if self._bar is None:
            return
        best_text = "-" if best is None or not math.isfinite(best) else f"{best:.6g}"
        text = f"trials {done} ({pruned} pruned, {failed} failed) · best {self.metric} {best_text}"
        elapsed = self.budget_s - max(0.0, self.deadline - time.time())
        with self._lock:
            self._bar.update(self._task, description=text, completed=min(elapsed, self.budget_s))

    def note(self, text: str) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(self._task, description=text)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.budget_s)
            self._bar.stop()
            self._bar = None
