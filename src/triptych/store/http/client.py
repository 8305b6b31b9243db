"""The HTTP client of the team server: one more implementation of the store contract.

:class:`HttpStore` is built from the endpoint table (:mod:`triptych.store.http.routes`): each
contract method binds its arguments by the contract's own signature, sends one request over a
kept-alive connection pool, and rebuilds the answer from the contract's return hint. Errors
come back as the same :class:`~triptych.errors.TriptychError` class the server's store raised,
with its message and hint, so remote use behaves like local use.
"""

from __future__ import annotations

import abc
import functools
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from triptych import errors
from triptych.errors import InvalidInput, StoreUnavailable, TriptychError
from triptych.store.base import MetadataStore
from triptych.store.http.codec import decode, dumps_arguments, loads
from triptych.store.http.routes import ENDPOINTS, Endpoint, query_value
from triptych.uris import redact

DEFAULT_TIMEOUT = 60.0  # seconds; a search over many runs or a busy SQLite file may take a while


class HttpStore(MetadataStore):
    """The metadata store of a triptych server at ``url`` (``http://host:5000``).

    Safe to share between threads: the connection pool is. Every method is one HTTP request;
    batch on the caller's side (the tracking writer does) to log quickly."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.url = url
        self._where = redact(url)
        self._token = resolve_token(token)
        self._timeout = timeout
        self._transport = transport
        self._pid = os.getpid()
        self._http = self._connect()

    def _connect(self) -> httpx.Client:
        from triptych import __version__

        return httpx.Client(
            base_url=self.url.rstrip("/"),
            timeout=self._timeout,
            transport=self._transport or httpx.HTTPTransport(retries=2),  # connect errors only
            headers={
                "user-agent": f"triptych/{__version__}",
                "accept": "application/json",
                **auth_headers(self._token),
            },
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def __repr__(self) -> str:
        return f"HttpStore({self._where!r}{', token=***' if self._token else ''})"

    def close(self) -> None:
        self._http.close()

    def _call(self, endpoint: Endpoint, arguments: dict[str, Any]) -> Any:
        path = endpoint.url_path
        for name in endpoint.path_args:
            path = path.replace("{" + name + "}", _segment(arguments.pop(name)))
        params: list[tuple[str, str | int | float | bool | None]] = []
        content: bytes | None = None
        if endpoint.in_query:
            for name, value in arguments.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                params += [(name, query_value(v)) for v in values if v is not None]
        else:
            content = dumps_arguments(arguments, endpoint.hints)
        if self._pid != os.getpid():  # a forked child must not share its parent's sockets
            self._pid, self._http = os.getpid(), self._connect()
        try:
            response = self._http.request(
                endpoint.verb,
                path,
                params=params or None,
                content=content,
                headers={"content-type": "application/json"} if content is not None else None,
            )
        except httpx.TimeoutException as e:
            raise StoreUnavailable(
                f"the triptych server at {self._where} did not answer in time ({e})",
                hint="check the server's log, or raise the client timeout",
            ) from e
        except httpx.TransportError as e:
            raise StoreUnavailable(
                f"cannot reach the triptych server at {self._where}: {e}",
                hint="start it with `triptych server`, or check TRIPTYCH_TRACKING_URI",
            ) from e
        if response.status_code >= 400:
            raise error_from(
                response, f"{endpoint.verb} {endpoint.url_path}", self._where, self._token
            )
        try:
            data = loads(response.content)
        except ValueError as e:
            raise StoreUnavailable(
                f"{self._where} answered {endpoint.verb} {path} with something that is not JSON",
                hint="is TRIPTYCH_TRACKING_URI the address of a triptych server?",
            ) from e
        return decode(endpoint.hints["return"], data, strict=False)  # newer servers may add fields


def _segment(value: object) -> str:
    """One path argument, escaped so that it stays one segment."""
    text = value if isinstance(value, str) else query_value(value)
    if text in (".", ".."):  # never a valid name or id; escaped so that nothing folds the path
        return "%2E" * len(text)
    return quote(text, safe="")


def resolve_token(token: str | None) -> str:
    """The API token to send: ``token``, else ``TRIPTYCH_TRACKING_TOKEN`` (may be empty)."""
    if token is None:
        from triptych import config

        token = config.resolve().tracking_token
    token = token.strip()
    if any(c.isspace() or ord(c) < 33 for c in token):
        raise InvalidInput("TRIPTYCH_TRACKING_TOKEN holds spaces or control characters")
    return token


def auth_headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _auth_hint(status: int, token: str | None) -> str | None:
    if status != 401 or token is None:  # 403: the server's hint names the role to grant
        return None
    if not token:
        return "this server needs an API token: set TRIPTYCH_TRACKING_TOKEN (an admin creates one)"
    return (
        "TRIPTYCH_TRACKING_TOKEN was refused (unknown, revoked or expired): ask an admin "
        "for a new one (triptych server token create NAME)"
    )


def error_from(
    response: httpx.Response, what: str, where: str, token: str | None = None
) -> TriptychError:
    """The triptych error a failed answer carries (the server's class, message and hint);
    a 401 says how to fix the token when ``token`` (the one sent, "" for none) is known."""
    error = _error_from(response, what, where)
    hint = _auth_hint(response.status_code, token)
    if hint is not None:
        error.hint = hint
    return error


def _error_from(response: httpx.Response, what: str, where: str) -> TriptychError:
    try:
        body = loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "message" not in body:
        return StoreUnavailable(
            f"{what} on {where} failed with HTTP {response.status_code}",
            hint="is this the address of a triptych server?",
        )
    cls = getattr(errors, str(body.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, TriptychError)) or cls is errors.StepFailed:
        cls = _by_status(response.status_code)
    return cls(str(body["message"]), hint=body.get("hint"))


def _by_status(status: int) -> type[TriptychError]:
    for cls, code in errors.HTTP_STATUS:
        if code == status:
            return cls
    if status == 401:
        return errors.Unauthenticated
    return InvalidInput if 400 <= status < 500 else TriptychError


def _remote(endpoint: Endpoint) -> Callable[..., Any]:
    """The client method for ``endpoint``: the contract's signature, one request."""
    signature = endpoint.signature

    def method(self: HttpStore, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        arguments = dict(bound.arguments)
        del arguments["self"]
        return self._call(endpoint, arguments)

    functools.update_wrapper(method, endpoint.contract)
    method.__isabstractmethod__ = False  # type: ignore[attr-defined]  # copied from the contract
    return method


for _endpoint in ENDPOINTS:
    setattr(HttpStore, _endpoint.method, _remote(_endpoint))
abc.update_abstractmethods(HttpStore)  # type: ignore[type-abstract]
del _endpoint
