"""The model registry service: register versions, move aliases, answer "what was champion".

Addresses: ``models:/NAME/3`` (a version), ``models:/NAME@champion`` (an alias),
``models:/NAME@latest``. A version points at model files logged with a run
(``runs:/<run_id>/<path>``); the registry never copies them.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from triptych.artifacts import paths
from triptych.errors import InvalidInput, NotFound, PermissionDenied
from triptych.store.base import validate_alias, validate_dataset_name
from triptych.store.entities import AliasRequest, ModelEvent, ModelVersion, RegisteredModel
from triptych.uris import parse_runs_uri

if TYPE_CHECKING:
    from triptych.tracking.client import Client

SCHEME = "models:/"
_URI = re.compile(r"^(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z][\w\-]*))?$")


@dataclass(frozen=True)
class ModelRef:
    """A model version named by number, alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None


def parse_ref(text: str) -> ModelRef:
    """Parse ``models:/NAME/3``, ``models:/NAME@alias``, ``models:/NAME@latest`` or ``NAME``
    (also ``NAME/3`` and ``NAME@alias`` without the scheme)."""
    body = text[len(SCHEME) :] if text.startswith(SCHEME) else text
    m = _URI.match(body.strip())
    if not m:
        raise InvalidInput(
            f"invalid model address {text!r}",
            hint="use models:/NAME/3, models:/NAME@champion or models:/NAME@latest",
        )
    alias = m["alias"]
    return ModelRef(
        validate_dataset_name(m["name"]),
        int(m["version"]) if m["version"] else None,
        None if alias in (None, "latest") else alias,
    )


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()


def _user() -> str | None:
    """Who acts, for the audit trail: ``$TRIPTYCH_USER`` or the login name. Locally this is
    a label, not an identity (anyone with the database file can write it); the team server
    puts authenticated users here."""
    import os

    if os.environ.get("TRIPTYCH_USER"):
        return os.environ["TRIPTYCH_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def get(ref: str, *, client: Client | None = None) -> ModelVersion:
    """The version an address names."""
    parsed = parse_ref(ref)
    return _client(client).store.get_model_version(parsed.name, parsed.version, alias=parsed.alias)


def resolve(uri: str, *, client: Client | None = None) -> str:
    """The ``runs:/…`` location of the model files a ``models:/…`` address names."""
    return get(uri, client=client).source


def register(
    source: str,
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    reason: str | None = None,
    client: Client | None = None,
) -> ModelVersion:
    """Register the model at ``source`` (``runs:/<run_id>/<path>``) as the next version of
    ``name``. The run and the files must exist; the registration is audited."""
    c = _client(client)
    location = parse_runs_uri(source)
    run = c.store.get_run(location.run_id)  # NotFound for a run that does not exist
    path = paths.normalise(location.path, allow_empty=True) or "model"  # UnsafePath: ../x
    if not c.store.walk_artifacts(run.run_id, path):
        raise NotFound(
            f"run {run.run_id} has no model files at {path!r}",
            hint="log one with triptych.log_model(model, name=...) inside the run",
        )
    return c.store.create_model_version(
        name,
        f"runs:/{run.run_id}/{path}",
        run_id=run.run_id,
        description=description,
        tags={k: str(v) for k, v in (tags or {}).items()},
        user=_user(),
        reason=reason,
    )


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    client: Client | None = None,
) -> int | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before. Refused when
    the alias's policy requires an approval (use :func:`request_alias`)."""
    c = _client(client)
    if c.store.alias_requires_approval(name, alias):
        raise PermissionDenied(
            f"moving {name}@{alias} requires an approval by someone else",
            hint=f"ask for it: triptych models request {name} {alias} {version}",
        )
    return c.store.set_model_alias(
        validate_dataset_name(name),
        validate_alias(alias),
        int(version),
        user=_user(),
        reason=reason,
        details=details,
    )


def set_policy(
    name: str, alias: str, *, require_approval: bool, client: Client | None = None
) -> None:
    """Make moves of ``alias`` need (or no longer need) another person's approval."""
    _client(client).store.set_alias_policy(
        validate_dataset_name(name), validate_alias(alias), require_approval, user=_user()
    )


def request_alias(
    name: str, alias: str, version: int, *, reason: str | None = None, client: Client | None = None
) -> AliasRequest:
    """Ask for ``alias`` to point at ``version``; someone else approves or rejects it."""
    return _client(client).store.create_alias_request(
        name, validate_alias(alias), int(version), user=_user(), reason=reason
    )


def approve(
    request_id: int, *, reason: str | None = None, client: Client | None = None
) -> AliasRequest:
    """Approve a pending request (not your own): the alias moves now."""
    return _client(client).store.decide_alias_request(
        int(request_id), True, user=_user(), reason=reason
    )


def reject(
    request_id: int, *, reason: str | None = None, client: Client | None = None
) -> AliasRequest:
    return _client(client).store.decide_alias_request(
        int(request_id), False, user=_user(), reason=reason
    )


def requests(
    name: str, *, status: str | None = None, client: Client | None = None
) -> list[AliasRequest]:
    return _client(client).store.list_alias_requests(validate_dataset_name(name), status)


def delete_alias(
    name: str, alias: str, *, reason: str | None = None, client: Client | None = None
) -> None:
    _client(client).store.delete_model_alias(name, alias, user=_user(), reason=reason)


def delete_version(
    name: str, version: int, *, reason: str | None = None, client: Client | None = None
) -> None:
    """Delete a version (its aliases go with it, each recorded); the run's files stay."""
    _client(client).store.delete_model_version(name, int(version), user=_user(), reason=reason)


def list_models(*, client: Client | None = None) -> list[RegisteredModel]:
    return _client(client).store.list_registered_models()


def versions(name: str, *, client: Client | None = None) -> list[ModelVersion]:
    return _client(client).store.list_model_versions(validate_dataset_name(name))


def history(name: str, *, client: Client | None = None) -> list[ModelEvent]:
    """The audit trail of ``name``, oldest first."""
    c = _client(client)
    c.store.get_registered_model(validate_dataset_name(name))  # NotFound for unknown models
    return c.store.model_history(name)


def aliases_at(name: str, when: datetime | int, *, client: Client | None = None) -> dict[str, int]:
    """Which version each alias pointed at, at time ``when`` (a datetime, or ms since epoch):
    replays the audit trail up to that moment."""
    c = _client(client)
    c.store.get_registered_model(validate_dataset_name(name))
    until = when if isinstance(when, int) else int(_aware(when).timestamp() * 1000)
    state: dict[str, int] = {}
    for event in c.store.model_history(name, until=until):
        if event.action == "alias" and event.alias and event.version is not None:
            state[event.alias] = event.version
        elif event.action == "unalias" and event.alias:
            state.pop(event.alias, None)
    return state


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.astimezone()  # naive means local time


def parse_when(text: str) -> datetime:
    """``2026-11-28``, ``2026-11-28T09:30``, ``2026-11-28 09:30:15+00:00`` (local when no zone)."""
    try:
        return _aware(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInput(
            f"cannot read the time {text!r}", hint="use ISO 8601, e.g. 2026-11-28T09:30"
        ) from None


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


from triptych.models.card import card  # noqa: E402 - part of the registry's API
from triptych.models.gate import GateDecision, gate  # noqa: E402

__all__ = [
    "GateDecision",
    "ModelRef",
    "aliases_at",
    "approve",
    "card",
    "delete_alias",
    "delete_version",
    "gate",
    "get",
    "history",
    "list_models",
    "parse_ref",
    "register",
    "reject",
    "request_alias",
    "requests",
    "resolve",
    "set_alias",
    "set_policy",
    "versions",
]
