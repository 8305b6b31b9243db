"""Addresses a deployment holds: ``deployments:/NAME`` and the model addresses it serves.

A model address is ``models:/NAME@alias`` (followed when the alias moves), ``models:/NAME/3``,
``models:/NAME@latest`` or ``runs:/<run_id>/<path>``; :func:`target` says what it serves now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from triptych.errors import InvalidInput, NotFound, TriptychError
from triptych.models import registry
from triptych.store.deployments import validate_deployment_name
from triptych.uris import parse_runs_uri

if TYPE_CHECKING:
    from triptych.tracking.client import Client

SCHEME = "deployments:/"
_MODEL_HINT = "use models:/NAME@alias, models:/NAME/3 or runs:/<run_id>/<path>"


def name_of(text: str) -> str:
    """The deployment name in ``NAME`` or ``deployments:/NAME``, validated."""
    body = text[len(SCHEME) :] if isinstance(text, str) and text.startswith(SCHEME) else text
    return validate_deployment_name(body)


@dataclass(frozen=True)
class Target:
    """What a model address serves at this moment."""

    address: str  # as the deployment holds it
    source: str  # runs:/<run_id>/<path> of the model files
    model_name: str | None  # registry name; None for a runs:/ address
    model_version: int | None


def model_ref(address: str) -> registry.ModelRef | None:
    """The registry reference of a ``models:/`` address; None for ``runs:/``."""
    if address.startswith(registry.SCHEME):
        return registry.parse_ref(address)
    if address.startswith("runs:/"):
        return None
    raise InvalidInput(f"{address!r} is not a model address", hint=_MODEL_HINT)


def target(address: str, *, client: Client | None = None) -> Target:
    """Resolve ``address`` through the registry, or check that a ``runs:/`` address has
    files. Raises InvalidInput for other schemes, NotFound when nothing is there."""
    ref = model_ref(address)
    if ref is not None:
        version = registry.get(address, client=client)
        return Target(address, version.source, version.name, version.version)
    location = parse_runs_uri(address)
    c = registry._client(client)
    run = c.store.get_run(location.run_id)
    path = location.path.strip("/") or "model"
    if not c.store.walk_artifacts(run.run_id, path):
        raise NotFound(
            f"run {run.run_id} has no model files at {path!r}",
            hint="log one with triptych.log_model(model, name=...) inside the run",
        )
    return Target(address, f"runs:/{run.run_id}/{path}", None, None)


def check(role: str, address: str | None, *, client: Client | None = None) -> Target | None:
    """:func:`target`, with the role (primary, canary, shadow) named in the error."""
    if address is None:
        return None
    try:
        return target(address, client=client)
    except TriptychError as e:
        raise type(e)(f"the {role} {address}: {e.message}", hint=e.hint or _MODEL_HINT) from e
