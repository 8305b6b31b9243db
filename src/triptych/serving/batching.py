"""Adaptive micro-batching: requests that arrive together are predicted in one call.

No timer and no batch size to tune: a request schedules a flush for the next turn of the
event loop (``call_soon``) and waits. Every request whose bytes arrived in the same turn
reaches the batcher before that flush runs, so under concurrency they share one ``predict``
call (one pass of the estimator's input validation instead of N), while a lone request only
waits for the end of the current turn — microseconds, not a batching window.

If a batch fails, each request is retried alone so that one bad request fails by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH_ROWS = 4096


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls into calls of ``run(items) -> results``."""

    def __init__(
        self,
        run: Callable[[list[T]], list[R]],
        size: Callable[[T], int] = lambda _: 1,
        max_rows: int = MAX_BATCH_ROWS,
    ) -> None:
        self._run = run
        self._size = size
        self._max_rows = max_rows
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._scheduled = False
        self.calls = 0  # predict calls made (for tests and metrics)
        self.items = 0

    def submit(self, item: T) -> asyncio.Future[R]:
        """A future of ``item``'s result; must be called from the event loop's thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        chunk: list[tuple[T, asyncio.Future[R]]] = []
        rows = 0
        for entry in pending:
            n = self._size(entry[0])
            if chunk and rows + n > self._max_rows:
                self._call(chunk)
                chunk, rows = [], 0
            chunk.append(entry)
            rows += n
        if chunk:
            self._call(chunk)

    def _call(self, chunk: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls += 1
        self.items += len(chunk)
        try:
            results = self._run([item for item, _ in chunk])
        except Exception as e:
            if len(chunk) == 1:
                _settle(chunk[0][1], error=e)
                return
            for entry in chunk:  # find the request(s) that fail on their own
                self._call([entry])
            return
        for (_, future), result in zip(chunk, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: Any = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
