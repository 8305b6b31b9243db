"""JSON for the store contract's values, both ways, driven by the contract's type hints.

:func:`dumps` turns records (dataclasses), enums, tuples and floats into JSON, guided by the
contract's hints; :func:`decode` rebuilds them from a hint. Non-finite floats travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` where the hint says ``float``, so the
JSON stays standard.

Decoding is deliberately *lenient*: a value that does not fit its hint is passed on as it is,
so the store on the other side sees what the caller gave and raises its own, documented
:class:`~triptych.errors.InvalidInput` (a bool where a number belongs stays a bool).

Both directions compile a plan per hint once (cached): a search answer of a thousand runs is
walked by a few closures per field, not re-interpreted from its type hints per value.
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from triptych.errors import InvalidInput

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_isfinite = math.isfinite

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any, list[bool]], Any]  # (value, special) -> JSON data


# -- the wire ------------------------------------------------------------------------------------
def dumps(value: Any, hint: Any = Any) -> bytes:
    """``value`` (of type ``hint``) as JSON bytes.

    Where the hint says ``float``, non-finite values travel as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``. In free-form data (``Mapping[str, Any]``) a string
    cannot say whether it was a float, so a non-finite float there is written with the
    JavaScript-style tokens (``NaN``) that Python's json module reads: the rare request that
    carries one reaches the store as the caller gave it, and the store decides."""
    special: list[bool] = []
    return _serialise(_encoder(hint)(value, special), special)


def dumps_arguments(arguments: Mapping[str, Any], hints: Mapping[str, Any]) -> bytes:
    """A call's arguments as one JSON object, each encoded by its own hint."""
    special: list[bool] = []
    data = {k: _encoder(hints.get(k, Any))(v, special) for k, v in arguments.items()}
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
    cannot carry. A non-finite float in free-form data is kept and noted in ``special``
    (without ``special``, it raises)."""
    if special is None:
        noted: list[bool] = []
        data = _encoder(hint)(value, noted)
        if noted:
            raise InvalidInput("a non-finite number in free-form data cannot be written as JSON")
        return data
    return _encoder(hint)(value, special)


def decode(hint: Any, value: Any, *, strict: bool = True) -> Any:
    """Rebuild ``value`` (plain JSON data) as the type ``hint`` names, leniently.

    ``strict`` refuses fields a record does not have (InvalidInput): the server reads requests
    so. The client reads answers with ``strict=False`` and drops such fields, so a newer
    server that added a field to a record still answers an older client."""
    return _decoder(hint, strict)(value)


# -- hints -----------------------------------------------------------------------------------------
def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _unwrap(hint: Any) -> Any:
    """``X | None`` → ``X``; other unions → Any (encoding follows the value then)."""
    if _is_union(typing.get_origin(hint)):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else Any
    return hint


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a record's init fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _parameters(cls: Any) -> tuple[Any, ...]:
    return tuple(getattr(cls, "__parameters__", ()))


def _bind(hint: Any, bound: Mapping[Any, Any]) -> Any:
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
    if _is_union(origin):
        return typing.Union[rebound]  # noqa: UP007 (built at run time)
    return origin[rebound]


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _is_mapping(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _is_sequence(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


# -- decoding --------------------------------------------------------------------------------------
def _identity(value: Any) -> Any:
    return value


def _float(value: Any) -> Any:
    if type(value) is float:
        return value
    if isinstance(value, str):
        return _SPECIAL.get(value, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@functools.cache
def _decoder(hint: Any, strict: bool = True) -> Decoder:
    """The decoder of ``hint``; every decoder passes None and ill-fitting values through."""
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return _identity
    origin = typing.get_origin(hint)
    if _is_union(origin):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arms) == 1:
            return _decoder(arms[0], strict)
        return _union_decoder(tuple(arms), strict)
    if origin is None:
        if hint is float:
            return _float
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum_decoder(hint)
        if dataclasses.is_dataclass(hint):
            return _record_decoder(hint, (), strict)
        return _identity
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(origin):  # a generic record, e.g. Page[Run]
        return _record_decoder(origin, tuple(zip(_parameters(origin), args, strict=False)), strict)
    if origin is tuple:
        return _tuple_decoder(args, strict)
    if _is_mapping(origin):
        inner = _decoder(args[1], strict) if len(args) == 2 else _identity
        if inner is _identity:
            return _identity
        return lambda v: {k: inner(x) for k, x in v.items()} if type(v) is dict else v
    if _is_sequence(origin):
        item = _decoder(args[0], strict) if args else _identity
        return lambda v: [item(x) for x in v] if type(v) is list else v
    return _identity


def _union_decoder(arms: tuple[Any, ...], strict: bool) -> Decoder:
    records = [_decoder(a, strict) for a in arms if _is_record(a)]
    first = _decoder(arms[0], strict)

    def decode_union(value: Any) -> Any:
        if records and type(value) is dict:
            return records[0](value)
        return first(value)

    return decode_union


def _enum_decoder(cls: type[enum.Enum]) -> Decoder:
    def decode_enum(value: Any) -> Any:
        if value is None:
            return None
        try:
            return cls(value)
        except ValueError:
            return value

    return decode_enum


def _tuple_decoder(args: tuple[Any, ...], strict: bool) -> Decoder:
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0], strict)
        return lambda v: tuple(item(x) for x in v) if type(v) is list else v
    items = [_decoder(a, strict) for a in args]

    def decode_tuple(value: Any) -> Any:
        if type(value) is not list:
            return value
        if len(value) != len(items):
            return tuple(value)
        return tuple(d(x) for d, x in zip(items, value, strict=True))

    return decode_tuple


def _record_decoder(cls: Any, bound: tuple[tuple[Any, Any], ...], strict: bool) -> Decoder:
    binding = dict(bound)
    fields = {k: _decoder(_bind(h, binding), strict) for k, h in field_hints(cls).items()}
    known = fields.keys()

    def decode_record(value: Any) -> Any:
        if type(value) is not dict:
            return value
        if not value.keys() <= known:
            if strict:
                unknown = ", ".join(sorted(set(value) - set(known)))
                raise InvalidInput(f"unknown field(s) of {cls.__name__}: {unknown}")
            value = {k: x for k, x in value.items() if k in known}
        try:
            return cls(**{k: fields[k](x) for k, x in value.items()})
        except TypeError as e:
            raise InvalidInput(f"invalid {cls.__name__}: {e}") from None

    return decode_record


# -- encoding --------------------------------------------------------------------------------------
def _any(value: Any, special: list[bool]) -> Any:
    """Encode a value of unknown type (free-form data, or one that does not fit its hint)."""
    if value is None or type(value) in (str, bool, int):
        return value
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, enum.Enum):
        return _any(value.value, special)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not _isfinite(value):
            special.append(True)
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encoder(type(value))(value, special)
    if isinstance(value, Mapping):
        return {_key(k): _any(v, special) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_any(v, special) for v in value]
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats, Decimal-likes
        return _any(float(value), special)
    raise InvalidInput(f"a {type(value).__name__} cannot be sent to the server: it is not JSON")


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    raise InvalidInput(f"mapping keys must be text to be sent to the server, got {key!r}")


def _float_encoder(value: Any, special: list[bool]) -> Any:
    if type(value) is float:
        if _isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int)):
        return _float_encoder(float(value), special)
    return _any(value, special)


def _text_encoder(value: Any, special: list[bool]) -> Any:
    return value if type(value) is str else _any(value, special)


@functools.cache
def _encoder(hint: Any) -> Encoder:
    """The encoder of ``hint``: fast where the value fits the hint, generic where it does not."""
    hint = _unwrap(hint)
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return _any
    if hint is float:
        return _float_encoder
    if hint is str:
        return _text_encoder
    origin = typing.get_origin(hint)
    if origin is None:
        if dataclasses.is_dataclass(hint):
            return _record_encoder(hint)
        return _any
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(origin):
        return _record_encoder(origin)  # the items' own classes guide the rest
    if _is_mapping(origin):
        return _mapping_encoder(_encoder(args[1]) if len(args) == 2 else _any)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_tuple_encoder(tuple(_encoder(a) for a in args))
    if origin is tuple or _is_sequence(origin):
        item = _encoder(args[0]) if args else _any

        def encode_items(value: Any, special: list[bool]) -> Any:
            if isinstance(value, (list, tuple)):
                return [item(x, special) for x in value]
            return _any(value, special)

        return encode_items
    return _any


def _mapping_encoder(inner: Encoder) -> Encoder:
    def encode_mapping(value: Any, special: list[bool]) -> Any:
        if not isinstance(value, Mapping):
            return _any(value, special)
        if (
            inner is _text_encoder
            and type(value) is dict
            and all(type(k) is str and type(v) is str for k, v in value.items())
        ):
            return value  # text to text (params, tags): as it is
        return {_key(k): inner(v, special) for k, v in value.items()}

    return encode_mapping


def _fixed_tuple_encoder(items: tuple[Encoder, ...]) -> Encoder:
    def encode_tuple(value: Any, special: list[bool]) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == len(items):
            return [e(x, special) for e, x in zip(items, value, strict=True)]
        return _any(value, special)

    return encode_tuple


def _record_encoder(cls: Any) -> Encoder:
    plan: list[tuple[str, Encoder]] | None = None
    record: Any = cls

    def encode_record(value: Any, special: list[bool]) -> Any:
        nonlocal plan
        if type(value) is not cls:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return _encoder(type(value))(value, special)
            return _any(value, special)
        if plan is None:  # built on first use (a record may refer to itself), then swapped in
            hints: dict[str, Any] = field_hints(record)
            plan = [(f.name, _encoder(hints.get(f.name, Any))) for f in dataclasses.fields(record)]
        return {name: e(getattr(value, name), special) for name, e in plan}

    return encode_record


# -- checking (the server's side) ----------------------------------------------------------------
INT64 = (-(1 << 63), (1 << 63) - 1)  # what every backend's integer columns hold
Checker = Callable[[Any, str], None]  # (decoded value, where) -> None, or raises InvalidInput


def check(hint: Any, value: Any, where: str) -> None:
    """Raise InvalidInput unless ``value`` (as :func:`decode` rebuilt it) is of type ``hint``.

    The server checks every argument so before it calls the store: the decoder passes values
    that do not fit through, and a list where a timestamp belongs would otherwise reach the
    database and come back as a 500 rather than a 400 naming the argument."""
    _checker(hint)(value, where)


def _refuse(where: str, expected: str, value: Any) -> InvalidInput:
    got = "null" if value is None else type(value).__name__
    return InvalidInput(f"{where} must be {expected}, got {got}: {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _any_value(value: Any, where: str) -> None:
    return None


def _of_type(cls: type, expected: str) -> Checker:
    def check_type(value: Any, where: str) -> None:
        if not isinstance(value, cls):
            raise _refuse(where, expected, value)

    return check_type


def _check_int(value: Any, where: str) -> None:
    if isinstance(value, str) and value.removeprefix("-").isdigit():  # too long to be read
        raise InvalidInput(f"{where} is out of range (a 64-bit integer): {_short(value)}")
    if type(value) is bool or not isinstance(value, int):
        raise _refuse(where, "an integer", value)
    if not INT64[0] <= value <= INT64[1]:
        raise InvalidInput(f"{where} is out of range (a 64-bit integer): {_short(value)}")


def _check_float(value: Any, where: str) -> None:
    if type(value) is bool or not isinstance(value, (int, float)):
        raise _refuse(where, "a number", value)


def _check_scalar(value: Any, where: str) -> None:
    if not isinstance(value, (str, int, float)):  # bool is an int
        raise _refuse(where, "text or a number", value)


def _check_bool(value: Any, where: str) -> None:
    if type(value) is not bool:
        raise _refuse(where, "true or false", value)


@functools.cache
def _checker(hint: Any) -> Checker:
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return _any_value
    origin = typing.get_origin(hint)
    if _is_union(origin):
        arms = typing.get_args(hint)
        optional = type(None) in arms
        checks = [_checker(a) for a in arms if a is not type(None)]
        return _union_checker(tuple(checks), optional)
    if hint is type(None):
        return _union_checker((), True)
    if origin is None:
        if hint is bool:
            return _check_bool
        if hint is int:
            return _check_int
        if hint is float:
            return _check_float
        if hint is str:
            return _of_type(str, "text")
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            names = ", ".join(repr(m.value) for m in hint)
            return _of_type(hint, f"one of {names}")
        if dataclasses.is_dataclass(hint):
            return _record_checker(hint)
        return _any_value
    args = typing.get_args(hint)
    if _is_mapping(origin):
        keys = _checker(args[0]) if len(args) == 2 else _any_value
        values = _checker(args[1]) if len(args) == 2 else _any_value
        if len(args) == 2 and args[1] is str:  # params and tags: the store keeps a number as text
            values = _check_scalar
        return _mapping_checker(keys, values)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_tuple_checker(tuple(_checker(a) for a in args))
    if origin is tuple or _is_sequence(origin):
        return _sequence_checker(_checker(args[0]) if args else _any_value)
    return _any_value


def _union_checker(arms: tuple[Checker, ...], optional: bool) -> Checker:
    def check_union(value: Any, where: str) -> None:
        if value is None and optional:
            return
        if not arms:
            raise _refuse(where, "null", value)
        error: InvalidInput | None = None
        for arm in arms:
            try:
                arm(value, where)
                return
            except InvalidInput as e:
                error = error or e
        assert error is not None
        raise error

    return check_union


def _record_checker(cls: Any) -> Checker:
    plan: list[tuple[str, Checker]] | None = None

    def check_record(value: Any, where: str) -> None:
        nonlocal plan
        if not isinstance(value, cls):
            raise _refuse(where, f"an object ({cls.__name__})", value)
        if plan is None:  # built on first use: a record may refer to itself
            plan = [(k, _checker(h)) for k, h in field_hints(cls).items()]
        for name, checker in plan:
            checker(getattr(value, name), f"{where}.{name}")

    return check_record


def _mapping_checker(keys: Checker, values: Checker) -> Checker:
    def check_mapping(value: Any, where: str) -> None:
        if not isinstance(value, Mapping):
            raise _refuse(where, "an object", value)
        for k, x in value.items():
            keys(k, f"{where} (a key)")
            values(x, f"{where}[{k!r}]")

    return check_mapping


def _sequence_checker(item: Checker) -> Checker:
    def check_sequence(value: Any, where: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise _refuse(where, "a list", value)
        for i, x in enumerate(value):
            item(x, f"{where}[{i}]")

    return check_sequence


def _fixed_tuple_checker(items: tuple[Checker, ...]) -> Checker:
    def check_tuple(value: Any, where: str) -> None:
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise _refuse(where, f"a list of {len(items)}", value)
        for i, (item, x) in enumerate(zip(items, value, strict=True)):
            item(x, f"{where}[{i}]")

    return check_tuple
