"""The release pipeline's smoke test: does the server at URL answer like the model should?

It asks ``GET /metadata`` (retrying with backoff while the server starts), posts the model's
input example to ``POST /predict`` and checks the answer: status 200, one prediction per row,
a request id, and the model name and version expected. Plain ``urllib``: a release job needs
nothing installed beyond triptych to run it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import Conflict, InvalidInput, TriptychError

if TYPE_CHECKING:
    from triptych.tracking.client import Client

BACKOFF = 0.5  # seconds before the first retry, doubled each time
MAX_WAIT = 8.0  # longest pause between two tries
_EXAMPLE_VALUES = {"int": 0, "float": 0.0, "bool": False, "string": "", "category": ""}


class SmokeTestFailed(TriptychError):
    """The server answered, but not as the model should (or never answered)."""


@dataclass
class SmokeResult:
    """What the smoke test saw on the successful try."""

    url: str
    status: int
    rows: int
    model: dict[str, Any]
    request_id: str
    latency_ms: float
    attempts: int
    example: str  # where the rows posted came from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Expected:
    """The model the server should answer with; None fields are not checked."""

    name: str | None = None
    version: int | None = None
    uri: str | None = None


def smoke_test(
    url: str,
    *,
    model: str | None = None,
    retries: int = 5,
    timeout: float = 5.0,
    client: Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeResult:
    """Check the scoring server at ``url``; raises SmokeTestFailed with a one-line reason."""
    from triptych.uris import redact

    base = _base(url)
    shown = redact(base)
    if retries < 0 or timeout <= 0:
        raise InvalidInput("--retries must be >= 0 and --timeout > 0")
    attempts = 0

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """One request, retried while the server is not up (refused, 5xx) — never on 4xx."""
        nonlocal attempts
        pause = BACKOFF
        for left in range(retries, -1, -1):
            attempts += 1
            try:
                return _request(method, base + path, body, timeout)
            except _Retryable as e:
                if not left:
                    raise SmokeTestFailed(
                        f"{method} {shown}{path} failed after {attempts} tries: {e}",
                        hint="is the server running and reachable? raise --retries to wait longer",
                    ) from None
            sleep(pause)
            pause = min(pause * 2, MAX_WAIT)
        raise AssertionError("unreachable")  # pragma: no cover

    status, metadata = call("GET", "/metadata")
    if status != 200 or not isinstance(metadata, dict):
        raise SmokeTestFailed(f"GET {shown}/metadata answered {status}: {_short(metadata)}")
    expected, records, source = _example_and_expected(model, metadata, client)
    started = time.perf_counter()
    status, answer = call("POST", "/predict", json.dumps({"records": records}).encode())
    latency = (time.perf_counter() - started) * 1000
    if status != 200:
        raise SmokeTestFailed(f"POST {shown}/predict answered {status}: {_short(answer)}")
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(records):
        got = len(predictions) if isinstance(predictions, list) else "no list of"
        raise SmokeTestFailed(
            f"POST {shown}/predict sent {len(records)} rows and got {got} predictions back"
        )
    who = answer.get("model") if isinstance(answer.get("model"), dict) else {}
    _check_model(who, expected, metadata, shown)
    request_id = str(answer.get("request_id") or "")
    from triptych.serving.ids import normalise

    try:
        normalise(request_id)
    except InvalidInput:
        raise SmokeTestFailed(f"the answer carries no valid request id ({request_id!r})") from None
    return SmokeResult(shown, status, len(records), who, request_id, latency, attempts, source)


def _base(url: str) -> str:
    text = url.strip().rstrip("/")
    if not text.startswith(("http://", "https://")) or len(text.split("/")) < 3:
        raise InvalidInput(f"{url!r} is not a server URL", hint="e.g. http://127.0.0.1:8080")
    return text


class _Retryable(Exception):
    pass


def _request(method: str, url: str, body: bytes | None, timeout: float) -> tuple[int, Any]:
    """``(status, parsed JSON or text)``; raises _Retryable when the server is not up."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
        if status in (502, 503, 504):  # starting, or a proxy in front of a starting server
            raise _Retryable(f"HTTP {status}") from None
    except (urllib.error.URLError, OSError) as e:  # refused, reset, timed out
        reason = getattr(e, "reason", e)
        raise _Retryable(str(reason)) from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."


def _example_and_expected(
    model: str | None, metadata: dict[str, Any], client: Client | None
) -> tuple[Expected, list[dict[str, Any]], str]:
    """The rows to post and the model to expect: from ``--model`` when given, else from the
    server's own metadata (its model's stored example, else one row built from its columns)."""
    if model is not None:
        from triptych.models import model as models
        from triptych.models import registry

        c = models._client(client)
        expected = Expected(uri=models.resolve(model, client=c))
        if model.startswith(registry.SCHEME):
            version = registry.get(model, client=c)
            expected = Expected(version.name, version.version, version.source)
        records = _stored_example(expected.uri, c)
        if records is None:
            raise InvalidInput(
                f"{model} has no input example to post",
                hint="log the model with input_example=, or leave out --model",
            )
        return expected, records, f"input example of {model}"
    uri = metadata.get("uri")
    if isinstance(uri, str) and uri.startswith("runs:/"):
        try:
            from triptych.models import model as models

            records = _stored_example(uri, models._client(client))
        except TriptychError:
            records = None  # the server's store is not this machine's: build a row
        if records:
            return Expected(), records, f"input example of {uri}"
    columns = metadata.get("columns") or (metadata.get("signature") or {}).get("inputs") or []
    if not columns:
        raise SmokeTestFailed(
            "the server's /metadata lists no input columns to build a request from",
            hint="pass --model URI so the model's input example is posted",
        )
    row = {c["name"]: _EXAMPLE_VALUES.get(c.get("dtype") or "float", 0.0) for c in columns}
    return Expected(), [row], "one row built from the server's signature"


def _stored_example(uri: str | None, c: Client) -> list[dict[str, Any]] | None:
    """The model's ``input_example.json`` as records, None when it has none."""
    from triptych.errors import NotFound
    from triptych.models.manifest import EXAMPLE_FILE
    from triptych.uris import parse_runs_uri

    if uri is None:
        return None
    ref = parse_runs_uri(uri)
    try:
        raw = c.read_artifact(ref.run_id, f"{ref.path.strip('/')}/{EXAMPLE_FILE}")
    except NotFound:
        return None
    records = json.loads(raw)  # log_model writes the example as a list of records
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return None
    return records


def _check_model(
    who: dict[str, Any], expected: Expected, metadata: dict[str, Any], url: str
) -> None:
    answered = f"{who.get('name')} version {who.get('version')} ({who.get('uri')})"
    if expected.uri is not None:
        same = who.get("uri") == expected.uri
        # A server that serves the files by run (a model image) knows no registry name: the
        # runs:/ address names the same files.
        if same and expected.name is not None and who.get("name") is not None:
            same = (who.get("name"), who.get("version")) == (expected.name, expected.version)
        if not same:
            want = (
                f"{expected.name} version {expected.version}"
                if expected.name
                else str(expected.uri)
            )
            raise Conflict(
                f"{url} answered with {answered}, expected {want}",
                hint="the deployment serves another model version than the one released",
            )
        return
    known = [metadata, *((metadata.get("variants") or {}).values())]
    if not any(isinstance(m, dict) and m.get("uri") == who.get("uri") for m in known):
        raise SmokeTestFailed(f"{url} answered with {answered}, which its /metadata does not list")
