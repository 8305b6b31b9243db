"""The run filter and ordering language, parsed once for every backend.

Filters are comparisons joined by ``and``::

    metrics.mse < 3000 and params.alpha = '0.5' and tags.team != 'x' and status = 'FINISHED'
    name LIKE 'ridge%' and metrics.`val loss` <= 0.2 and params.model IN ('ridge', 'lasso')

Entities: ``metrics.`` (numbers), ``params.`` and ``tags.`` (strings), and run attributes
(``status``, ``name``, ``run_id``, ``user``, ``start_time``, ``end_time``, ``fingerprint``,
optionally written ``attributes.status``). Ordering: ``"metrics.mse"``, ``"params.alpha DESC"``,
``"start_time ASC"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from triptych.errors import InvalidInput

EntityType = Literal["metric", "param", "tag", "attribute"]

STRING_ATTRIBUTES = ("status", "name", "run_id", "user", "fingerprint", "lifecycle")
NUMBER_ATTRIBUTES = ("start_time", "end_time")
ATTRIBUTES = STRING_ATTRIBUTES + NUMBER_ATTRIBUTES
_PREFIXES: dict[str, EntityType] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<ident>[A-Za-z_][A-Za-z0-9_]*\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_\-./:]+)|[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Comparison:
    entity: EntityType
    key: str
    op: str
    value: float | str | tuple[str, ...]


@dataclass(frozen=True)
class OrderBy:
    entity: EntityType
    key: str
    ascending: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f"cannot parse filter at {text[pos : pos + 20]!r}",
                hint="e.g. \"metrics.mse < 3000 and params.alpha = '0.5'\"",
            )
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _split_key(ident: str) -> tuple[EntityType, str]:
    if "." in ident:
        prefix, key = ident.split(".", 1)
        entity = _PREFIXES.get(prefix.lower())
        if entity is None:
            raise InvalidInput(
                f"unknown entity {prefix!r} in {ident!r}",
                hint="use metrics., params., tags. or attributes.",
            )
        if key[:1] in '`"' and key[-1:] == key[:1]:
            key = key[1:-1]
    else:
        entity, key = "attribute", ident
    if entity == "attribute":
        key = key.lower()
        if key not in ATTRIBUTES:
            raise InvalidInput(
                f"unknown run attribute {key!r}", hint=f"attributes: {', '.join(ATTRIBUTES)}"
            )
    return entity, key


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


FILTER_HINT = "e.g. \"metrics.mse < 3000 and params.alpha = '0.5'\" (see docs/tracking.md)"
ORDER_HINT = "e.g. 'metrics.mse', 'params.alpha DESC' or 'start_time ASC'"


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a filter into comparisons that must all hold. Raises InvalidInput."""
    if not text or not text.strip():
        return []
    try:
        return _parse_filter(text)
    except InvalidInput as e:
        e.hint = e.hint or FILTER_HINT
        raise


def _parse_filter(text: str) -> list[Comparison]:
    tokens = _tokens(text)
    out: list[Comparison] = []
    i = 0

    def expect(kinds: tuple[str, ...]) -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] not in kinds:
            got = tokens[i][1] if i < len(tokens) else "end of filter"
            raise InvalidInput(f"filter {text!r}: expected {' or '.join(kinds)}, got {got!r}")
        i += 1
        return tokens[i - 1]

    while True:
        _, ident = expect(("ident",))
        entity, key = _split_key(ident)
        # Operators: symbols, or words LIKE / ILIKE / IN / NOT IN.
        if i < len(tokens) and tokens[i][0] == "op":
            op = "!=" if tokens[i][1] == "<>" else tokens[i][1]
            i += 1
        else:
            _, word = expect(("ident",))
            op = word.upper()
            if op == "NOT":
                _, nxt = expect(("ident",))
                op = f"NOT {nxt.upper()}"
            if op not in ("LIKE", "ILIKE", "IN", "NOT IN"):
                raise InvalidInput(f"filter {text!r}: unknown operator {word!r}")
        numeric = entity == "metric" or (entity == "attribute" and key in NUMBER_ATTRIBUTES)
        allowed = NUMBER_OPS if numeric else STRING_OPS
        if op not in allowed:
            raise InvalidInput(
                f"operator {op} does not apply to {ident}", hint=f"use one of {', '.join(allowed)}"
            )
        value: float | str | tuple[str, ...]
        if op in ("IN", "NOT IN"):
            expect(("lparen",))
            items = [_unquote(expect(("string",))[1])]
            while i < len(tokens) and tokens[i][0] == "comma":
                i += 1
                items.append(_unquote(expect(("string",))[1]))
            expect(("rparen",))
            value = tuple(items)
        elif numeric:
            value = float(expect(("number",))[1])
        else:
            value = _unquote(expect(("string",))[1])
        out.append(Comparison(entity, key, op, value))
        if i == len(tokens):
            return out
        _, word = expect(("ident",))
        if word.lower() != "and":
            raise InvalidInput(f"filter {text!r}: expected 'and', got {word!r}")


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse ``["metrics.mse ASC", "start_time"]``. Raises InvalidInput."""
    try:
        return _parse_order_by(clauses)
    except InvalidInput as e:
        e.hint = ORDER_HINT if e.hint in (None, FILTER_HINT) else e.hint
        raise


def _parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    out: list[OrderBy] = []
    for clause in clauses or ():
        parts = clause.strip().rsplit(None, 1)
        ascending = True
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            ascending = parts[1].upper() == "ASC"
            ident = parts[0]
        else:
            ident = clause.strip()
        if not ident:
            raise InvalidInput(f"empty order_by clause {clause!r}")
        tokens = _tokens(ident)
        if len(tokens) != 1 or tokens[0][0] != "ident":
            raise InvalidInput(f"cannot parse order_by {clause!r}", hint="e.g. 'metrics.mse DESC'")
        entity, key = _split_key(tokens[0][1])
        out.append(OrderBy(entity, key, ascending))
    return out
