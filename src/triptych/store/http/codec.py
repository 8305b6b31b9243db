"""JSON for the store contract's values, both ways, driven by the contract's type hints.

:func:`dumps` turns records (dataclasses), enums, tuples and floats into JSON, guided by the
contract's hints; :func:`decode` rebuilds them from a hint. Non-finite floats travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` where the hint says ``float``, so the
JSON stays standard.

Decoding is deliberately *lenient*: a value that does not fit its hint is passed on as it is,
so the store on the other side sees what the caller gave and raises its own, documented
:class:`~triptych.errors.InvalidInput` (a bool where a number belongs stays a bool).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson

from triptych.errors import InvalidInput

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def dumps(value: Any, hint: Any = Any) -> bytes:
    """``value`` (of type ``hint``) as JSON bytes.

    Where the hint says ``float``, non-finite values travel as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``. In free-form data (``Mapping[str, Any]``) a string
    cannot say whether it was a float, so a non-finite float there is written with the
    JavaScript-style tokens (``NaN``) that Python's json module reads: the rare request that
    carries one reaches the store as the caller gave it, and the store decides."""
    special: list[bool] = []
    return _serialise(encode(value, hint, special), special)


def dumps_arguments(arguments: Mapping[str, Any], hints: Mapping[str, Any]) -> bytes:
    """A call's arguments as one JSON object, each encoded by its own hint."""
    special: list[bool] = []
    data = {k: encode(v, hints.get(k, Any), special) for k, v in arguments.items()}
    return _serialise(data, special)


def _serialise(data: Any, special: list[bool]) -> bytes:
    if special:
        return json.dumps(data, allow_nan=True, separators=(",", ":")).encode()
    return orjson.dumps(data)


def loads(raw: bytes) -> Any:
    """Read JSON written by :func:`dumps` (raises ``ValueError`` for anything else)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # NaN tokens in free-form data; raises ValueError if not JSON


def encode(value: Any, hint: Any = Any, special: list[bool] | None = None) -> Any:
    """``value`` as plain JSON data, guided by ``hint``; raises InvalidInput for what JSON
    cannot carry. A non-finite float in free-form data is left as it is and noted in
    ``special``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    hint = _unwrap(hint)
    if isinstance(value, enum.Enum):
        return encode(value.value, Any, special)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if hint is float:
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if special is None:
            raise InvalidInput(f"{value} cannot be written as JSON")
        special.append(True)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = field_hints(type(value))
        return {
            f.name: encode(getattr(value, f.name), hints.get(f.name, Any), special)
            for f in dataclasses.fields(value)
        }
    args = typing.get_args(hint)
    if isinstance(value, Mapping):
        inner = args[1] if len(args) == 2 else Any
        return {_key(k): encode(v, inner, special) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if typing.get_origin(hint) is tuple and len(args) == len(value) and Ellipsis not in args:
            return [encode(v, a, special) for v, a in zip(value, args, strict=True)]
        inner = args[0] if args else Any
        return [encode(v, inner, special) for v in value]
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats, Decimal-likes
        return encode(float(value), hint, special)
    raise InvalidInput(f"a {type(value).__name__} cannot be sent to the server: it is not JSON")


def _unwrap(hint: Any) -> Any:
    """``X | None`` → ``X``; other unions → Any (encoding follows the value then)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else Any
    return hint


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    raise InvalidInput(f"mapping keys must be text to be sent to the server, got {key!r}")


def decode(hint: Any, value: Any) -> Any:
    """Rebuild ``value`` (plain JSON data) as the type ``hint`` names, leniently."""
    if value is None or hint is Any or hint is object:
        return value
    if isinstance(hint, TypeVar):
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return decode(arms[0], value) if len(arms) == 1 else _decode_union(arms, value)
    if origin is None:
        return _decode_plain(hint, value)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(origin):  # a generic record, e.g. Page[Run]
        return _decode_record(origin, value, dict(zip(_parameters(origin), args, strict=False)))
    if origin is tuple:
        if not isinstance(value, list):
            return value
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        if len(args) == len(value):
            return tuple(decode(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, dict):
            return value
        inner = args[1] if len(args) == 2 else Any
        return {k: decode(inner, v) for k, v in value.items()}
    if isinstance(origin, type) and issubclass(origin, Sequence):
        if not isinstance(value, list):
            return value
        inner = args[0] if args else Any
        return [decode(inner, v) for v in value]
    return value


def _decode_union(arms: list[Any], value: Any) -> Any:
    for arm in arms:
        if dataclasses.is_dataclass(arm) and isinstance(value, dict):
            return decode(arm, value)
    return decode(arms[0], value)


def _decode_plain(hint: Any, value: Any) -> Any:
    if hint is float:
        if isinstance(value, str):
            return _SPECIAL.get(value, value)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            return value
    if dataclasses.is_dataclass(hint):
        return _decode_record(hint, value, {})
    return value


def _decode_record(cls: Any, value: Any, bound: dict[Any, Any]) -> Any:
    if not isinstance(value, dict):
        return value
    hints = field_hints(cls)
    unknown = set(value) - set(hints)
    if unknown:
        raise InvalidInput(f"unknown field(s) of {cls.__name__}: {', '.join(sorted(unknown))}")
    kwargs = {k: decode(_bind(hints[k], bound), v) for k, v in value.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise InvalidInput(f"invalid {cls.__name__}: {e}") from None


def _parameters(cls: Any) -> tuple[Any, ...]:
    return tuple(getattr(cls, "__parameters__", ()))


def _bind(hint: Any, bound: dict[Any, Any]) -> Any:
    """``hint`` with a generic record's type variables bound (``list[T]`` → ``list[Run]``)."""
    if not bound:
        return hint
    if isinstance(hint, TypeVar):
        return bound.get(hint, Any)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if not args or origin is None:
        return hint
    rebound = tuple(_bind(a, bound) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[rebound]  # noqa: UP007 (built at run time)
    return origin[rebound]


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a record's init fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
