"""Answering one prediction request, independent of HTTP: route, check, predict, record.

The response path does only what the answer needs: pick the variant by the request id, check
the body against that model's columns, predict (batched with concurrent requests) and encode.
Counting, the prediction log and the shadow copy happen in :meth:`ScoringService.settle`,
which the app calls after the answer has been sent; the shadow model runs in its own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from triptych.serving import payload
from triptych.serving.plan import goes_to_canary
from triptych.serving.scorer import Scorer

if TYPE_CHECKING:
    from triptych.serving.payload import Rows
    from triptych.serving.predlog import Prediction
    from triptych.serving.slots import Slot, Slots
    from triptych.serving.telemetry import Telemetry

log = logging.getLogger(__name__)

SHADOW_QUEUE = 2000  # shadow copies waiting to be scored; beyond it they are dropped
SHADOW_BATCH = 256  # copies scored in one call of the shadow model


@dataclass
class Answer:
    """An answer to send, and what :meth:`ScoringService.settle` needs afterwards."""

    status: int
    body: bytes
    variant: str
    scorer: Scorer
    rows: Rows | None = None
    outputs: list[Any] | None = None
    error: str | None = None
    code: str | None = None  # error code for the errors_total metric


def error_body(message: str, request_id: str, detail: list[Any] | None = None) -> bytes:
    doc: dict[str, Any] = {"error": message, "request_id": request_id}
    if detail is not None:
        doc["detail"] = detail
    return orjson.dumps(doc)


class ScoringService:
    """Routes requests over the models :class:`Slots` holds and records every answer."""

    def __init__(
        self, slots: Slots, telemetry: Telemetry, *, deployment: str | None = None
    ) -> None:
        self.slots = slots
        self.telemetry = telemetry
        self.deployment = deployment
        self.recorder: Callable[[Prediction], None] | None = None
        self._prediction: Any = None  # the Prediction class, imported when recording starts
        self.shadow = ShadowWorker(self)

    def record_with(self, recorder: Callable[[Prediction], None] | None) -> None:
        from triptych.serving.predlog import Prediction

        self._prediction = Prediction
        self.recorder = recorder

    async def predict(self, body: bytes, request_id: str) -> Answer:
        routing = self.slots.routing
        assert routing is not None
        slot = routing.primary
        if routing.canary is not None and goes_to_canary(request_id, routing.plan.canary_weight):
            slot = routing.canary
        scorer = slot.scorer
        try:
            rows = payload.parse(body, scorer.columns)
        except payload.BadRequest as e:
            code = "malformed_json" if e.status == 400 else "invalid_input"
            return Answer(
                e.status,
                error_body(e.message, request_id, e.errors),
                slot.variant,
                scorer,
                error=_summary(e),
                code=code,
            )
        try:
            outputs = await scorer.batcher.submit(rows)
        except Exception as e:
            log.exception("request %s: model %s failed: %s", request_id, scorer.identity.uri, e)
            return Answer(
                500,
                error_body("the model failed on this request; see the server log", request_id),
                slot.variant,
                scorer,
                rows=rows,
                error=f"{type(e).__name__}: {e}",
                code="model_error",
            )
        body = orjson.dumps(
            {"predictions": outputs, "model": scorer.answer_model, "request_id": request_id}
        )
        return Answer(200, body, slot.variant, scorer, rows, outputs)

    def refuse(self, status: int, code: str, message: str, request_id: str) -> Answer:
        """An answer to a request refused before its body was read (413, 415)."""
        routing = self.slots.routing
        assert routing is not None
        return Answer(
            status,
            error_body(message, request_id),
            "primary",
            routing.primary.scorer,
            error=message,
            code=code,
        )

    def settle(self, answer: Answer, request_id: str, seconds: float) -> None:
        """After the answer was sent: count it, log it, send the shadow its copy."""
        self.telemetry.observe(answer.variant, answer.status, seconds)
        if answer.code is not None:
            self.telemetry.error(answer.code)
        if self.recorder is not None:
            self.recorder(
                self._record(
                    request_id,
                    answer.variant,
                    answer.scorer,
                    answer.rows.records() if answer.rows is not None else [],
                    answer.outputs or [],
                    seconds * 1000.0,
                    answer.status,
                    answer.error,
                )
            )
        if answer.status == 200 and answer.rows is not None:
            routing = self.slots.routing
            if routing is not None and routing.shadow is not None:
                self.shadow.put(request_id, answer.rows, routing.shadow)

    def _record(
        self,
        request_id: str,
        variant: str,
        scorer: Scorer,
        inputs: list[dict[str, Any]],
        outputs: list[Any],
        latency_ms: float,
        status: int,
        error: str | None,
    ) -> Prediction:
        who = scorer.identity
        prediction: Prediction = self._prediction(
            request_id=request_id,
            time_ms=int(request_id[:12], 16),
            deployment=self.deployment,
            variant=variant,
            model_name=who.name,
            model_version=who.version,
            model_uri=who.uri,
            inputs=inputs,
            outputs=outputs,
            latency_ms=latency_ms,
            status=status,
            error=error,
        )
        return prediction


def _summary(e: payload.BadRequest) -> str:
    first = e.errors[0] if e.errors else {}
    where = ".".join(str(p) for p in first.get("loc", []))
    more = f" (+{len(e.errors) - 1} more)" if len(e.errors) > 1 else ""
    return f"{e.message}: {where}: {first.get('msg', '')}{more}"


def _rows_for(scorer: Scorer, rows: Rows) -> Rows:
    """The primary's checked rows in the shadow model's columns (usually the same)."""
    if scorer.columns.names == rows._names:
        return rows
    return payload.parse(orjson.dumps({"records": rows.records()}), scorer.columns)


class ShadowWorker:
    """Scores shadow copies in a thread, off the response path; its errors stay here."""

    def __init__(self, service: ScoringService) -> None:
        self.service = service
        self.queue: queue.Queue[tuple[str, Rows, Slot] | None] = queue.Queue(SHADOW_QUEUE)
        self.scored = 0
        self._thread: threading.Thread | None = None

    def put(self, request_id: str, rows: Rows, slot: Slot) -> None:
        if self._thread is None:
            self.start()
        try:
            self.queue.put_nowait((request_id, rows, slot))
        except queue.Full:
            self.service.telemetry.shadow_dropped.inc()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="triptych-shadow", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Score what is queued, then stop."""
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < SHADOW_BATCH:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._score(batch)
                    return
                batch.append(more)
            self._score(batch)

    def _score(self, batch: list[tuple[str, Rows, Slot]]) -> None:
        by_scorer: dict[int, list[tuple[str, Rows, Scorer]]] = {}
        for request_id, rows, slot in batch:
            scorer = slot.scorer
            try:
                rows = _rows_for(scorer, rows)
            except payload.BadRequest as e:  # its columns differ from the primary's
                self._done(request_id, scorer, rows, [], 0.0, 422, _summary(e))
                continue
            by_scorer.setdefault(id(scorer), []).append((request_id, rows, scorer))
        for items in by_scorer.values():
            scorer = items[0][2]
            start = time.perf_counter()
            try:
                outputs = scorer.score([rows for _, rows, _ in items])
                errors: list[str | None] = [None] * len(items)
            except Exception:
                outputs, errors = [], []
                for _, rows, _ in items:  # alone, so one bad row fails alone
                    try:
                        outputs.append(scorer.score([rows])[0])
                        errors.append(None)
                    except Exception as e:
                        log.warning("shadow model %s failed: %s", scorer.identity.uri, e)
                        outputs.append([])
                        errors.append(f"{type(e).__name__}: {e}")
            seconds = (time.perf_counter() - start) / len(items)
            scorer.batcher.calls += 1
            for (request_id, rows, _), out, error in zip(items, outputs, errors, strict=True):
                self._done(
                    request_id, scorer, rows, out, seconds, 200 if error is None else 500, error
                )

    def _done(
        self,
        request_id: str,
        scorer: Scorer,
        rows: Rows,
        outputs: list[Any],
        seconds: float,
        status: int,
        error: str | None,
    ) -> None:
        service = self.service
        service.telemetry.observe("shadow", status, seconds)
        self.scored += 1
        if service.recorder is not None:
            service.recorder(
                service._record(
                    request_id,
                    "shadow",
                    scorer,
                    rows.records(),
                    outputs,
                    seconds * 1000.0,
                    status,
                    error,
                )
            )
