"""Path arguments that stay one segment, whatever they contain.

The client escapes each path argument whole (``bad/name`` → ``bad%2Fname``), but ASGI servers
decode the path before routing, which would turn that escaped slash into a separator and
answer 404 for what the store should call an invalid name. :class:`EncodedSlashes` routes on
a path where escaped slashes stay escaped, and :func:`argument` decodes them in the argument.
The ``triptych_segment`` convertor matches empty segments too, for the same reason.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor

SEGMENT = "triptych_segment"
_ESCAPED_SLASH = re.compile(rb"%2[fF]")


class _Segment(Convertor[str]):
    regex = "[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def register_segment() -> None:
    """Make ``{name:triptych_segment}`` known to starlette (its registry is process-wide)."""
    if SEGMENT not in CONVERTOR_TYPES:
        register_url_convertor(SEGMENT, _Segment())


_REWRITTEN = "triptych.escaped_slashes"


def argument(scope: Any, text: str) -> str:
    """A path argument as the client gave it."""
    return text.replace("%2F", "/") if scope.get(_REWRITTEN) else text


class EncodedSlashes:
    """ASGI middleware: route on the path with escaped slashes kept as ``%2F``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and _ESCAPED_SLASH.search(raw):
            parts = _ESCAPED_SLASH.split(raw)
            path = "%2F".join(unquote(p.decode("latin-1"), encoding="utf-8") for p in parts)
            scope = {**scope, "path": path, _REWRITTEN: True}
        await self.app(scope, receive, send)
