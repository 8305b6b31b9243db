"""Writing and reading model files: skops by default, pickle only when asked for twice.

skops stores an object tree as JSON plus arrays and, on load, builds only the types it is
told to trust; pickle runs whatever the file says. So pickle is written only with
``serializer="pickle"`` and read only with ``allow_pickle=True``.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, NoReturn

from triptych.errors import IntegrityError, InvalidInput, PermissionDenied
from triptych.models.trust import TrustPolicy

SERIALIZERS = ("skops", "pickle")
OPT_IN = (
    "if you trust where this model came from, add them to the setting trusted_types "
    "(TRIPTYCH_TRUSTED_TYPES=module.Type,module.*) or pass "
    "load_model(..., trusted_types=[...])"
)


def dump(model: Any, path: Path, serializer: str) -> None:
    """Write ``model`` to ``path`` with ``serializer``."""
    if serializer == "skops":
        import skops.io as sio
        from skops.io.exceptions import UnsupportedTypeException

        try:
            path.write_bytes(_canonical_skops(sio.dumps(model)))
        except (UnsupportedTypeException, TypeError) as e:
            raise InvalidInput(
                f"skops cannot store this {type(model).__name__}: {e}",
                hint="serializer='pickle' stores anything, but loading it then needs "
                "allow_pickle=True and trust in the file",
            ) from e
    elif serializer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        raise InvalidInput(
            f"unknown serializer {serializer!r}", hint=f"use one of {', '.join(SERIALIZERS)}"
        )


_SKOPS_ID = re.compile(rb'"__id__": (\d+)|"(\d+)\.npy"')


def _canonical_skops(raw: bytes) -> bytes:
    """The same model gives the same bytes: skops names arrays and memo entries after
    ``id()`` (memory addresses) and stamps zip entries with the time; number them in order of
    appearance and use a fixed time, so equal models share a digest (and cache keys, and
    the artifact store keeps them once)."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    schema = src.read("schema.json")
    numbers: dict[bytes, bytes] = {}
    for m in _SKOPS_ID.finditer(schema):
        found = m.group(1) or m.group(2)
        numbers.setdefault(found, str(len(numbers) + 1).encode())

    def renumber(m: re.Match[bytes]) -> bytes:
        if m.group(1) is not None:
            return b'"__id__": ' + numbers[m.group(1)]
        return b'"' + numbers[m.group(2)] + b'.npy"'

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        entries = []
        for info in src.infolist():
            data = src.read(info.filename)
            name = info.filename
            if name == "schema.json":
                data = _SKOPS_ID.sub(renumber, schema)
            elif name.endswith(".npy") and name[:-4].encode() in numbers:
                name = numbers[name[:-4].encode()].decode() + ".npy"
            entries.append((name, data, info.compress_type))
        for name, data, compression in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = compression
            dst.writestr(entry, data)
    return out.getvalue()


def untrusted_types(path: Path, where: str) -> list[str]:
    """The types in a skops file that skops does not trust by itself (nothing is built)."""
    import skops.io as sio

    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as e:  # a damaged or foreign file: zip, JSON or schema errors
        raise IntegrityError(
            f"{where} is not a readable skops file: {type(e).__name__}: {e}"
        ) from e


def refused_types(path: Path, policy: TrustPolicy, where: str) -> tuple[list[str], list[str]]:
    """``(allowed, refused)`` types of a skops file under ``policy``."""
    return policy.split(untrusted_types(path, where))


def refuse_pickle(where: str) -> NoReturn:
    raise PermissionDenied(
        f"{where} is a pickle file: loading a pickle runs any code it contains",
        hint="only if you trust where it came from: load_model(uri, allow_pickle=True); "
        "log models with the default serializer='skops' to avoid this",
    )


def load(
    path: Path, serializer: str, *, policy: TrustPolicy, allow_pickle: bool, where: str
) -> Any:
    """Read a model file; refuses pickle without ``allow_pickle`` and skops files holding
    types ``policy`` does not allow, before building anything."""
    if serializer == "pickle":
        if not allow_pickle:
            refuse_pickle(where)
        with open(path, "rb") as f:
            return pickle.load(f)  # the caller opted in with allow_pickle=True
    if serializer != "skops":
        raise InvalidInput(f"{where}: unknown serializer {serializer!r}")

    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    allowed, refused = refused_types(path, policy, where)
    if refused:
        raise PermissionDenied(
            f"{where} contains type(s) the trust policy does not allow: " + ", ".join(refused),
            hint=OPT_IN,
        )
    try:
        return sio.load(path, trusted=allowed)
    except UntrustedTypesFoundException as e:  # skops audits again: never load on a mismatch
        raise PermissionDenied(f"{where}: {e}", hint=OPT_IN) from e
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise InvalidInput(
            f"cannot rebuild the model in {where}: {type(e).__name__}: {e}",
            hint="install the versions its manifest.json lists under requirements",
        ) from e
