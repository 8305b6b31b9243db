"""The background writer: per-call logging without a database round trip.

``log_metric`` appends to an in-memory buffer and returns; one daemon thread per store writes
the buffer in batches at least every ``flush_interval`` seconds (sooner when it grows past
:data:`EARLY_FLUSH`), and sends the heartbeats of the runs this process is running.
:meth:`BatchWriter.flush` writes everything now in the caller's thread; the fluent API calls it
at run end and at interpreter exit.

Loss window: a process killed with SIGKILL (or a machine that loses power) loses what was
logged since the last flush — at most ``flush_interval`` seconds of points. A normal exit,
an exception or Ctrl-C loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field

from triptych.errors import StoreUnavailable, TriptychError
from triptych.store.base import MetadataStore
from triptych.store.entities import Metric, RunStatus

log = logging.getLogger(__name__)

EARLY_FLUSH = 50_000  # buffered items that wake the writer before its interval
BATCH = 20_000  # metrics per transaction


@dataclass
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


class BatchWriter:
    """Buffers metrics, params and tags per run and writes them in the background."""

    def __init__(
        self, store: MetadataStore, flush_interval: float = 1.0, heartbeat_interval: float = 10.0
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self._pending: dict[str, _Pending] = {}
        self._size = 0
        self._lock = threading.Lock()  # guards _pending and _live
        self._io = threading.Lock()  # one writer at a time keeps each run's points in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._live: set[str] = set()
        self._errors: dict[str, TriptychError] = {}
        self._thread: threading.Thread | None = None

    # -- producer side ----------------------------------------------------------------------
    def add(
        self,
        run_id: str,
        metrics: list[Metric] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Queue items for ``run_id``; returns at once."""
        with self._lock:
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            if metrics:
                pending.metrics.extend(metrics)
                self._size += len(metrics)
            if params:
                pending.params.update(params)
                self._size += len(params)
            if tags:
                pending.tags.update(tags)
                self._size += len(tags)
            big = self._size >= EARLY_FLUSH
        self._ensure_thread()
        if big:
            self._wake.set()

    def add_metric(self, run_id: str, metric: Metric) -> None:
        """The hot path of per-call logging: one append under a lock."""
        with self._lock:
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            pending.metrics.append(metric)
            self._size += 1
            big = self._size >= EARLY_FLUSH
        if self._thread is None:
            self._ensure_thread()
        if big:
            self._wake.set()

    def watch(self, run_id: str) -> None:
        """Heartbeat ``run_id`` until :meth:`unwatch`."""
        with self._lock:
            self._live.add(run_id)
        self._ensure_thread()

    def unwatch(self, run_id: str) -> None:
        with self._lock:
            self._live.discard(run_id)

    # -- writing ----------------------------------------------------------------------------
    def flush(self, run_id: str | None = None) -> None:
        """Write what is buffered now. Raises the first error a write for ``run_id`` (or any
        run, when None) met since the last flush — a changed param, a deleted run."""
        self._write_pending()
        with self._lock:
            if run_id is None:
                errors, self._errors = list(self._errors.values()), {}
            else:
                error = self._errors.pop(run_id, None)
                errors = [error] if error else []
        if errors:
            raise errors[0]

    def finish(self, run_id: str, status: RunStatus, tags: Mapping[str, str] | None = None) -> None:
        """Write ``run_id``'s buffer and its final status in one go (one transaction on SQL
        stores), then raise any error a write for it met. The status is set even when the
        last batch is refused (e.g. a param another process changed)."""
        self.unwatch(run_id)
        with self._io:
            with self._lock:
                pending = self._pending.pop(run_id, None) or _Pending()
                self._size -= pending.size()
                earlier = self._errors.pop(run_id, None)
            pending.tags.update(tags or {})
            metrics = pending.metrics
            cut = max(0, len(metrics) - BATCH)
            try:
                for i in range(0, cut, BATCH):
                    self.store.log_batch(run_id, metrics[i : min(i + BATCH, cut)])
                self.store.finish_run(
                    run_id, status, metrics=metrics[cut:], params=pending.params, tags=pending.tags
                )
            except StoreUnavailable:
                self._requeue({run_id: pending})  # kept for the background and exit flushes
                raise
            except TriptychError:
                with suppress(TriptychError):
                    self.store.update_run(run_id, status=status)
                raise
        if earlier is not None:
            raise earlier

    def _write_pending(self) -> None:
        with self._io:
            with self._lock:
                batch, self._pending, self._size = self._pending, {}, 0
            failed: dict[str, _Pending] = {}
            for run_id, pending in batch.items():
                try:
                    self._write_run(run_id, pending)
                except StoreUnavailable:
                    failed[run_id] = pending  # kept, in order, for the next attempt
                except TriptychError as e:
                    log.error("could not log to run %s: %s", run_id, e)
                    with self._lock:
                        self._errors.setdefault(run_id, e)
            if failed:
                self._requeue(failed)
                raise StoreUnavailable(
                    "the metadata store is unreachable; logged values are kept in memory "
                    "and retried",
                    hint="check the tracking URI with: triptych info",
                )

    def _write_run(self, run_id: str, pending: _Pending) -> None:
        metrics = pending.metrics
        first = metrics[:BATCH]
        self.store.log_batch(run_id, first, pending.params, pending.tags)
        for i in range(BATCH, len(metrics), BATCH):
            self.store.log_batch(run_id, metrics[i : i + BATCH])

    def _requeue(self, failed: dict[str, _Pending]) -> None:
        with self._lock:
            for run_id, old in failed.items():
                newer = self._pending.get(run_id)
                if newer is not None:
                    old.metrics.extend(newer.metrics)
                    old.params.update(newer.params)
                    old.tags.update(newer.tags)
                self._pending[run_id] = old
                self._size += old.size()

    # -- the thread -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="triptych-writer", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        last_beat = time.monotonic()
        tick = min(self.flush_interval, self.heartbeat_interval)
        backoff = tick
        while not self._stop.is_set():
            self._wake.wait(backoff)
            self._wake.clear()
            try:
                self._write_pending()
                backoff = tick
            except StoreUnavailable as e:
                log.warning("%s", e)
                backoff = min(backoff * 2, 30.0)
            except Exception:  # never let the writer die silently
                log.exception("triptych background writer failed")
            if time.monotonic() - last_beat >= self.heartbeat_interval:
                last_beat = time.monotonic()
                self._beat()

    def _beat(self) -> None:
        with self._lock:
            live = sorted(self._live)
        if not live:
            return
        try:
            self.store.heartbeat(live)
        except TriptychError as e:
            log.warning("heartbeat failed: %s", e)

    def close(self) -> None:
        """Flush and stop the thread; errors are logged, not raised (used at exit)."""
        self._stop.set()
        self._wake.set()
        try:
            self._write_pending()
        except TriptychError as e:
            log.error("triptych could not write buffered values at exit: %s", e)
