"""The scoring server's ASGI app: HTTP in, :class:`ScoringService` answers out.

A plain ASGI callable rather than a framework: it has six fixed routes, and on a request that
takes well under a millisecond a framework's request/response objects are a measurable share
(see docs/serving.md, performance). Bodies are read with a size limit checked while reading,
only ``application/json`` is accepted, and nothing is ever unpickled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson

from triptych.serving.ids import new_request_id
from triptych.serving.service import Answer, ScoringService, error_body

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY = 10 * 1024 * 1024
JSON = b"application/json"
_JSON_HEADER = (b"content-type", JSON)
GET_ROUTES = ("/health", "/ready", "/metadata", "/metrics", "/openapi.json")


class Lifecycle(Protocol):
    """What runs at server start and stop (the serving run, the prediction log...)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class ScoringApp:
    """ASGI app over a :class:`ScoringService`."""

    def __init__(
        self,
        service: ScoringService,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        lifecycle: Lifecycle | None = None,
        metadata: Callable[[], dict[str, Any]] | None = None,
        openapi: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.service = service
        self.max_body = max_body
        self.lifecycle = lifecycle
        self._metadata = metadata or (lambda: {})
        self._openapi = openapi or (lambda: {})
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            method = scope["method"]
            if path == "/predict":
                if method == "POST":
                    await self._predict(scope, receive, send)
                else:
                    self.service.telemetry.error("method_not_allowed")
                    await _send(send, 405, _msg("use POST /predict"), [(b"allow", b"POST")])
            elif path in GET_ROUTES:
                if method in ("GET", "HEAD"):
                    await self._get(path, send)
                else:
                    self.service.telemetry.error("method_not_allowed")
                    await _send(send, 405, _msg(f"use GET {path}"), [(b"allow", b"GET, HEAD")])
            else:
                self.service.telemetry.error("not_found")
                await _send(send, 404, _msg(f"no route {path}; try POST /predict"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        content_type = b""
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        answer: Answer | None = None
        if not _is_json(content_type):
            answer = self.service.refuse(
                415,
                "unsupported_media_type",
                f"content type {content_type.decode('latin-1') or '(none)'!r} is not accepted; "
                "send JSON with Content-Type: application/json",
                request_id,
            )
        elif length > self.max_body:
            answer = self._too_large(request_id)
        else:
            body = await self._read(receive)
            if body is None:
                answer = self._too_large(request_id)
            else:
                answer = await self.service.predict(body, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    _JSON_HEADER,
                    (b"content-length", str(len(answer.body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
        try:
            self.service.settle(answer, request_id, time.perf_counter() - started)
        except Exception:  # the answer is out; counting it must not turn into an error
            log.exception("request %s: could not record the answer", request_id)

    def _too_large(self, request_id: str) -> Answer:
        return self.service.refuse(
            413,
            "body_too_large",
            f"the body is over the limit of {self.max_body} bytes; send fewer rows per request",
            request_id,
        )

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit."""
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= self.max_body else None
        chunks = [body]
        size = len(body)
        while True:
            if size > self.max_body:
                return None
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks) if size <= self.max_body else None

    async def _get(self, path: str, send: Send) -> None:
        routing = self.service.slots.routing
        if path == "/health":
            await _send(send, 200, b'{"status":"ok"}')
        elif path == "/ready":
            if routing is not None and self.started:
                await _send(send, 200, b'{"status":"ready"}')
            else:
                await _send(send, 503, b'{"status":"loading"}')
        elif path == "/metrics":
            text, content_type = self.service.telemetry.render()
            await _send(send, 200, text, content_type=content_type.encode())
        elif path == "/metadata":
            await _send(send, 200, orjson.dumps(self._metadata()))
        else:
            await _send(send, 200, orjson.dumps(self._openapi()))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.lifecycle is not None:
                        self.lifecycle.start()
                except Exception as e:
                    log.exception("the scoring server could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                self.started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.started = False
                try:
                    if self.lifecycle is not None:
                        self.lifecycle.stop()
                except Exception as e:
                    log.exception("the scoring server did not stop cleanly")
                    await send({"type": "lifespan.shutdown.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def _is_json(content_type: bytes) -> bool:
    main = content_type.split(b";", 1)[0].strip().lower()
    return main == JSON


def _msg(text: str) -> bytes:
    return orjson.dumps({"error": text})


async def _send(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    content_type: bytes = JSON,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["DEFAULT_MAX_BODY", "ScoringApp", "error_body"]
