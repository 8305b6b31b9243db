"""The deployment service: create, change, promote and roll back what a server serves.

Every change is one new revision in the store with an audit event (who, when, why, the spec
before and after). Model addresses are checked against the registry at change time, so a
deployment never starts pointing at nothing.

Promotion: when the primary is an alias of a registered model (``models:/diabetes@champion``)
and the canary an address of the same model (``@challenger``, ``/3``), promoting moves the
primary's alias to the canary's current version through the registry (its history shows it)
and clears the canary; otherwise the canary's address becomes the primary's.

Rollback undoes the latest change not yet undone: it restores the spec before it (and moves
back an alias its promotion moved) as a new revision. Repeated rollbacks walk further back;
the creation itself cannot be rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from triptych.deployments.refs import check, model_ref, name_of
from triptych.errors import Conflict, InvalidInput
from triptych.models import registry
from triptych.store.deployments import validate_reason, validate_spec, validate_thresholds
from triptych.store.entities import Deployment, DeploymentEvent, DeploymentSpec, Thresholds

if TYPE_CHECKING:
    from triptych.tracking.client import Client


def _store(client: Client | None) -> Any:
    return registry._client(client).store


def _actor(actor: str | None) -> str | None:
    return actor if actor is not None else registry._user()


def _thresholds(value: Thresholds | Mapping[str, Any] | None) -> Thresholds:
    if value is None:
        return Thresholds()
    if isinstance(value, Mapping):
        unknown = set(value) - {"max_error_rate", "max_p99_ms", "min_requests"}
        if unknown:
            raise InvalidInput(
                f"unknown threshold {sorted(unknown)[0]!r}",
                hint="use max_error_rate, max_p99_ms and min_requests",
            )
        return validate_thresholds(Thresholds(**value))
    return validate_thresholds(value)


def _checked(spec: DeploymentSpec, client: Client | None) -> DeploymentSpec:
    """Shape first (cheap, same errors as the store), then every address must resolve."""
    spec = validate_spec(spec)
    check("primary", spec.primary, client=client)
    check("canary", spec.canary, client=client)
    check("shadow", spec.shadow, client=client)
    return spec


def create(
    name: str,
    model: str,
    *,
    canary: str | None = None,
    weight: int = 0,
    shadow: str | None = None,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    reason: str | None = None,
    actor: str | None = None,
    client: Client | None = None,
) -> Deployment:
    """Create deployment ``name`` serving ``model``, optionally a canary taking ``weight``
    percent of requests and a shadow scoring a copy of each. Raises AlreadyExists,
    InvalidInput, NotFound (an address that resolves to nothing); nothing is written then."""
    n = name_of(name)
    spec = _checked(DeploymentSpec(model, canary, weight, shadow, _thresholds(thresholds)), client)
    result: Deployment = _store(client).create_deployment(
        n, spec, actor=_actor(actor), reason=validate_reason(reason)
    )
    return result


def get(name: str, *, client: Client | None = None) -> Deployment:
    """The deployment ``NAME`` or ``deployments:/NAME`` at its current revision."""
    result: Deployment = _store(client).get_deployment(name_of(name))
    return result


def list_deployments(*, client: Client | None = None) -> list[Deployment]:
    """Every deployment, by name."""
    result: list[Deployment] = _store(client).list_deployments()
    return result


def _change(
    name: str,
    action: str,
    change: dict[str, Any],
    *,
    reason: str | None,
    actor: str | None,
    expected_revision: int | None,
    client: Client | None,
) -> Deployment:
    n = name_of(name)
    store = _store(client)
    current: Deployment = store.get_deployment(n)
    spec = _checked(replace(current.spec, **change), client)
    result: Deployment = store.update_deployment(
        n,
        spec,
        action=action,
        expected_revision=current.revision if expected_revision is None else expected_revision,
        actor=_actor(actor),
        reason=validate_reason(reason),
    )
    return result


def set_canary(
    name: str,
    model: str | None,
    weight: int = 0,
    *,
    reason: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    client: Client | None = None,
) -> Deployment:
    """Send ``weight`` percent of requests to ``model``; ``model=None`` (weight 0) removes the
    canary. Raises NotFound, InvalidInput, Conflict (changed since read)."""
    return _change(
        name, "canary", {"canary": model, "canary_weight": weight}, reason=reason, actor=actor,
        expected_revision=expected_revision, client=client,
    )  # fmt: skip


def set_shadow(
    name: str,
    model: str | None,
    *,
    reason: str | None = None,
    actor: str | None = None,
    client: Client | None = None,
) -> Deployment:
    """Score a copy of every request with ``model`` off the response path (None: stop)."""
    return _change(
        name, "shadow", {"shadow": model}, reason=reason, actor=actor, expected_revision=None,
        client=client,
    )  # fmt: skip


def set_thresholds(
    name: str,
    thresholds: Thresholds | Mapping[str, Any],
    *,
    reason: str | None = None,
    actor: str | None = None,
    client: Client | None = None,
) -> Deployment:
    """Replace the automatic-rollback thresholds."""
    return _change(
        name, "thresholds", {"thresholds": _thresholds(thresholds)}, reason=reason, actor=actor,
        expected_revision=None, client=client,
    )  # fmt: skip


def promote(
    name: str,
    *,
    reason: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    client: Client | None = None,
) -> Deployment:
    """Make the canary the primary (see the module docstring). Raises Conflict without a
    canary, PermissionDenied when the alias needs an approval; nothing changes then."""
    n = name_of(name)
    store = _store(client)
    d: Deployment = store.get_deployment(n)
    if d.canary is None:
        raise Conflict(
            f"deployment {n!r} has no canary to promote",
            hint=f"set one first: triptych deploy canary {n} URI --weight 10",
        )
    revision = d.revision if expected_revision is None else expected_revision
    validate_reason(reason)
    canary = check("canary", d.canary, client=client)
    assert canary is not None
    primary_ref, canary_ref = model_ref(d.primary), model_ref(d.canary)
    if not (
        primary_ref and canary_ref and primary_ref.alias and primary_ref.name == canary_ref.name
    ):
        spec = replace(d.spec, primary=d.canary, canary=None, canary_weight=0)
        if spec.shadow == spec.primary:
            spec = replace(spec, shadow=None)  # it would shadow itself
        result: Deployment = store.update_deployment(
            n, spec, action="promote", expected_revision=revision, actor=_actor(actor),
            reason=reason,
        )  # fmt: skip
        return result
    # the primary follows an alias: move the alias, keep the address
    model, alias = primary_ref.name, primary_ref.alias
    before = store.get_model_version(model, alias=alias).version
    after = canary.model_version
    assert after is not None
    spec = replace(d.spec, canary=None, canary_weight=0)
    moved = {"model": model, "alias": alias, "from": before, "to": after}
    if before != after:
        registry.set_alias(
            model, alias, after, client=client,
            reason=f"promote deployment {n}" + (f": {reason}" if reason else ""),
            details={"deployment": n, "revision": d.revision + 1},
        )  # fmt: skip
    try:
        result = store.update_deployment(
            n, spec, action="promote", expected_revision=revision, actor=_actor(actor),
            reason=reason, details={"alias": moved} if before != after else None,
        )  # fmt: skip
    except BaseException:
        if before != after:  # the deployment did not change: neither does the alias
            registry.set_alias(
                model, alias, before, client=client,
                reason=f"undo: promotion of deployment {n} failed",
            )  # fmt: skip
        raise
    return result


def _undo_target(events: list[DeploymentEvent]) -> DeploymentEvent | None:
    """The latest change not yet undone by a rollback (None: only the creation is left)."""
    stack: list[DeploymentEvent] = []
    for e in events:
        if e.action in ("create", "delete"):
            stack = [e] if e.action == "create" else []
        elif e.action == "rollback":
            undone = (e.details or {}).get("undoes")
            while stack and stack[-1].action != "create":
                if stack.pop().revision == undone or undone is None:
                    break
        else:
            stack.append(e)
    top = stack[-1] if stack else None
    return top if top is not None and top.before is not None else None


def rollback(
    name: str,
    *,
    reason: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    client: Client | None = None,
) -> Deployment:
    """Undo the latest change (see the module docstring), recording ``reason``.

    ``expected_revision`` makes the rollback apply only to that revision: a server replica
    that saw a failing canary passes the revision it serves, so several replicas deciding at
    once roll back once (the others get Conflict). Raises Conflict when there is nothing to
    roll back to, or when an alias a promotion moved has moved again since."""
    n = name_of(name)
    store = _store(client)
    d: Deployment = store.get_deployment(n)
    revision = d.revision if expected_revision is None else expected_revision
    validate_reason(reason)
    if revision != d.revision:
        raise Conflict(
            f"deployment {n!r} is at revision {d.revision}, not {revision}: "
            "it changed since it was read",
            hint=f"look at the change (triptych deploy history {n}) and try again",
        )
    undo = _undo_target(store.deployment_history(n))
    if undo is None or undo.before is None:
        raise Conflict(
            f"deployment {n!r} has nothing to roll back to: every change since its creation "
            "is already rolled back",
            hint=f"change it instead (triptych deploy canary {n} ...), or delete it",
        )
    spec = _checked(undo.before, client)
    moved = (undo.details or {}).get("alias")
    back: dict[str, Any] | None = None
    if moved:
        model, alias = moved["model"], moved["alias"]
        now = store.get_model_version(model, alias=alias).version
        if now != moved["to"]:
            raise Conflict(
                f"{model}@{alias} was moved to version {now} after promotion {undo.revision} "
                f"moved it to {moved['to']}: rolling back would undo someone else's move",
                hint=f"move it yourself: triptych models alias {model} {alias} VERSION",
            )
        back = {"model": model, "alias": alias, "from": moved["to"], "to": moved["from"]}
        registry.set_alias(
            model, alias, moved["from"], client=client,
            reason=f"roll back deployment {n}" + (f": {reason}" if reason else ""),
            details={"deployment": n, "revision": d.revision + 1},
        )  # fmt: skip
    details: dict[str, Any] = {"undoes": undo.revision}
    if back:
        details["alias"] = back
    try:
        result: Deployment = store.update_deployment(
            n, spec, action="rollback", expected_revision=revision, actor=_actor(actor),
            reason=reason, details=details,
        )  # fmt: skip
    except BaseException:
        if back:
            registry.set_alias(
                back["model"], back["alias"], back["from"], client=client,
                reason=f"undo: rollback of deployment {n} failed",
            )  # fmt: skip
        raise
    return result


def delete(
    name: str, *, reason: str | None = None, actor: str | None = None, client: Client | None = None
) -> None:
    """Delete the deployment; its audit trail stays (``history`` still answers)."""
    _store(client).delete_deployment(
        name_of(name), actor=_actor(actor), reason=validate_reason(reason)
    )


def history(
    name: str, *, limit: int | None = None, client: Client | None = None
) -> list[DeploymentEvent]:
    """The audit trail, oldest first; also for a deleted deployment."""
    result: list[DeploymentEvent] = _store(client).deployment_history(name_of(name), limit=limit)
    return result
