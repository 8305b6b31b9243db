"""Loop policies: what the closed loop may do for a deployment, kept on its monitor.

``set_policy("diabetes", pipeline="examples/diabetes/pipeline.py")`` lets
:mod:`triptych.monitoring.loop` retrain on drift or performance decay. The deployment must
serve a model through an alias (``models:/NAME@champion``): the loop acts by letting the
pipeline's gate move that alias, and rolls back by moving it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput
from triptych.store.entities import LoopPolicy, Monitor
from triptych.store.monitoring import validate_policy

if TYPE_CHECKING:
    from triptych.tracking.client import Client


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def followed_alias(deployment: str, *, client: Client | None = None) -> tuple[str, str]:
    """(model name, alias) the deployment's primary follows. Raises InvalidInput when it
    serves a fixed version or a run's model: there is no alias for the loop to move."""
    from triptych.deployments import get
    from triptych.deployments.refs import model_ref

    d = get(deployment, client=_client(client))
    ref = model_ref(d.primary)
    if ref is None or not ref.alias:
        raise InvalidInput(
            f"deployment {d.name!r} serves {d.primary}, not a model alias: the loop has "
            "nothing to move",
            hint=f"serve an alias: triptych deploy create {d.name} --model models:/NAME@champion",
        )
    return ref.name, ref.alias


def set_policy(
    deployment: str,
    *,
    pipeline: str,
    triggers: Iterable[str] = ("drift", "performance"),
    schedule: str | None = None,
    params: Mapping[str, Any] | None = None,
    data_param: str | None = "ingest.source",
    target: str = "target",
    min_labels: int = 50,
    tolerance: float = 0.05,
    retrain_cooldown: str | int = "1h",
    workdir: Path | None = None,
    client: Client | None = None,
) -> Monitor:
    """Give the deployment's monitor a loop policy (replacing one it had). The pipeline file
    is made absolute (relative to ``workdir``, default the current folder) and must parse.
    Raises NotFound (no monitor), InvalidInput; nothing changes then."""
    from triptych.deployments import name_of
    from triptych.monitoring.monitors import seconds
    from triptych.pipelines.schedules import check_cron, resolve_pipeline

    c = _client(client)
    name = name_of(deployment)
    monitor = c.store.get_monitor(name)
    followed_alias(name, client=c)
    policy = LoopPolicy(
        pipeline=resolve_pipeline(pipeline, workdir or Path.cwd()),
        triggers=tuple(triggers),
        schedule=check_cron(schedule) if schedule is not None else None,
        params=dict(params or {}),
        data_param=data_param,
        target=target,
        min_labels=min_labels,
        tolerance=tolerance,
        retrain_cooldown_s=seconds(retrain_cooldown, "retrain cooldown"),
    )
    validate_policy(policy)
    result: Monitor = c.store.update_monitor(name, replace(monitor.spec, policy=policy))
    return result


def clear_policy(deployment: str, *, client: Client | None = None) -> Monitor:
    """Remove the loop policy: the monitor goes on checking and alerting only."""
    from triptych.deployments import name_of

    c = _client(client)
    monitor = c.store.get_monitor(name_of(deployment))
    result: Monitor = c.store.update_monitor(monitor.name, replace(monitor.spec, policy=None))
    return result


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``step.key=value`` items (the CLI's ``-p``) as a mapping; values parsed as YAML scalars
    (``2`` is a number, ``true`` a boolean), as ``triptych pipeline run -p`` does."""
    import yaml

    found: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"invalid parameter {item!r}", hint="use step.key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:  # e.g. a !!python/object tag: the text as it is, never run
            parsed = value
        if not isinstance(parsed, (str, int, float, bool)) and parsed is not None:
            parsed = value
        found[key.strip()] = parsed
    return found


__all__ = ["clear_policy", "followed_alias", "parse_params", "set_policy"]
