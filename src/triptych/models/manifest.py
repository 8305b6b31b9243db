"""``manifest.json``: what a logged model is, how it was written and what it needs.

The manifest is read before anything else in a model folder and checked field by field: the
loader decides from it which file to read and with which serializer, so a manifest that
names another file, an unknown serializer or a malformed digest is refused outright. What it
can never do is widen what gets loaded: trusted types come from the platform policy only
(:mod:`triptych.models.trust`), and keys this module does not know are not even read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput
from triptych.models.flavours import FLAVOURS

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
EXAMPLE_FILE = "input_example.json"
MODEL_FILES = {"skops": "model.skops", "pickle": "model.pkl"}
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of a logged model."""

    flavour: str
    serializer: str
    model_file: str
    sha256: str
    size: int
    model_class: str
    signature: Mapping[str, Any] | None
    requirements: tuple[str, ...]
    run_id: str
    fingerprint: str | None
    triptych_version: str
    python: str | None = None
    environment_digest: str | None = None
    input_example: str | None = None
    created_at: int | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavour": self.flavour,
            "serializer": self.serializer,
            "model_file": {"name": self.model_file, "sha256": self.sha256, "size": self.size},
            "model_class": self.model_class,
            "signature": dict(self.signature) if self.signature is not None else None,
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "python": self.python,
            "environment_digest": self.environment_digest,
            "run_id": self.run_id,
            "fingerprint": self.fingerprint,
            "triptych_version": self.triptych_version,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: bytes | str, where: str) -> Manifest:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"{where}: manifest.json is not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: manifest.json must hold an object")
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Manifest:
        def bad(what: str) -> InvalidInput:
            return InvalidInput(f"{where}: invalid manifest.json: {what}")

        version = data.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise bad(f"format_version {version!r}")
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"{where} was written by a newer triptych (model format {version})",
                hint=f"this triptych reads format {FORMAT_VERSION}; upgrade it",
            )
        serializer = data.get("serializer")
        if serializer not in MODEL_FILES:
            raise bad(f"serializer {serializer!r} (known: {', '.join(MODEL_FILES)})")
        flavour = data.get("flavour")
        if flavour not in FLAVOURS:
            raise InvalidInput(
                f"{where}: unknown model flavour {flavour!r}",
                hint=f"this triptych knows {', '.join(FLAVOURS)}; upgrade it to load this model",
            )
        file = data.get("model_file")
        if not isinstance(file, Mapping):
            raise bad("model_file must be an object")
        name, digest, size = file.get("name"), file.get("sha256"), file.get("size")
        if name != MODEL_FILES[serializer]:
            raise bad(f"a {serializer} model file is {MODEL_FILES[serializer]}, not {name!r}")
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
            raise bad(f"sha256 {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"size {size!r}")
        signature = data.get("signature")
        if signature is not None and not isinstance(signature, Mapping):
            raise bad("signature must be an object or null")
        requirements = data.get("requirements") or []
        if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
            raise bad("requirements must be a list of strings")
        example = data.get("input_example")
        if example not in (None, EXAMPLE_FILE):
            raise bad(f"input_example {example!r}")
        run_id = data.get("run_id")
        if not isinstance(run_id, str):
            raise bad(f"run_id {run_id!r}")
        return cls(
            flavour=flavour,
            serializer=serializer,
            model_file=name,
            sha256=digest,
            size=size,
            model_class=str(data.get("model_class") or ""),
            signature=signature,
            requirements=tuple(requirements),
            run_id=run_id,
            fingerprint=_opt_str(data.get("fingerprint")),
            triptych_version=str(data.get("triptych_version") or ""),
            python=_opt_str(data.get("python")),
            environment_digest=_opt_str(data.get("environment_digest")),
            input_example=example,
            created_at=data.get("created_at") if isinstance(data.get("created_at"), int) else None,
            format_version=version,
        )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
