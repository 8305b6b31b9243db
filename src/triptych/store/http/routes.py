"""The wire form of the store contract: one table, read by the server and by the client.

Each :class:`Endpoint` binds one method of :class:`~triptych.store.base.MetadataStore` to an
HTTP verb and a path under ``/api/v1``, and says which permission it needs. Arguments named
in the path travel in it; the others travel in the query string for GET and DELETE, and as
one JSON object otherwise. Values are encoded by :mod:`triptych.store.http.codec`.

Both ends are built from this table, so they cannot drift apart, and a test checks that it
covers the whole contract.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PREFIX = "/api/v1"
_PATH_ARG = re.compile(r"{(\w+)}")


class Permission(str, enum.Enum):
    """What a route needs. Every route of the server declares one; none is implied."""

    PUBLIC = "public"  # anyone, also without a token (health, the API description)
    READ = "read"  # viewers and up
    WRITE = "write"  # editors and up
    ADMIN = "admin"  # administrators


@dataclass(frozen=True)
class Endpoint:
    """``method`` of the store contract served as ``verb path``."""

    method: str
    verb: str
    path: str
    permission: Permission

    @property
    def url_path(self) -> str:
        return PREFIX + self.path

    @functools.cached_property
    def path_args(self) -> tuple[str, ...]:
        return tuple(_PATH_ARG.findall(self.path))

    @property
    def in_query(self) -> bool:
        """Whether the arguments not in the path go in the query string (else a JSON body)."""
        return self.verb in ("GET", "DELETE")

    @functools.cached_property
    def contract(self) -> Callable[..., Any]:
        from triptych.store.base import MetadataStore

        method: Callable[..., Any] = getattr(MetadataStore, self.method)
        return method

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.contract)

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        """The contract method's resolved hints, ``return`` included."""
        return typing.get_type_hints(self.contract)


R, W = Permission.READ, Permission.WRITE


def _e(method: str, route: str, permission: Permission) -> Endpoint:
    verb, path = route.split(" ", 1)
    return Endpoint(method, verb, path, permission)


# Static paths come before the parameterised paths they could be mistaken for.
ENDPOINTS: tuple[Endpoint, ...] = (
    # experiments
    _e("create_experiment", "POST /experiments", W),
    _e("list_experiments", "GET /experiments", R),
    _e("get_experiment_by_name", "GET /experiments/by-name", R),
    _e("get_experiment", "GET /experiments/{experiment_id}", R),
    _e("rename_experiment", "PATCH /experiments/{experiment_id}", W),
    _e("set_experiment_lifecycle", "PUT /experiments/{experiment_id}/lifecycle", W),
    _e("set_experiment_tags", "PATCH /experiments/{experiment_id}/tags", W),
    _e("delete_experiment_tag", "DELETE /experiments/{experiment_id}/tags", W),
    # runs
    _e("create_run", "POST /runs", W),
    _e("search_runs", "POST /runs/search", R),
    _e("heartbeat", "POST /runs/heartbeat", W),
    _e("fail_stale_runs", "POST /runs/fail-stale", W),
    _e("get_run", "GET /runs/{run_id}", R),
    _e("update_run", "PATCH /runs/{run_id}", W),
    _e("finish_run", "POST /runs/{run_id}/finish", W),
    _e("set_run_lifecycle", "PUT /runs/{run_id}/lifecycle", W),
    _e("log_batch", "POST /runs/{run_id}/batch", W),
    _e("delete_run_tag", "DELETE /runs/{run_id}/tags", W),
    _e("get_metric_history", "GET /runs/{run_id}/metric-history", R),
    _e("log_inputs", "POST /runs/{run_id}/inputs", W),
    _e("record_artifacts", "POST /runs/{run_id}/artifacts", W),
    _e("list_artifacts", "GET /runs/{run_id}/artifacts", R),
    _e("walk_artifacts", "GET /runs/{run_id}/artifacts/walk", R),
    _e("get_artifact", "GET /runs/{run_id}/artifacts/entry", R),
    # environments (the environment leg of the triptych)
    _e("put_environment", "POST /environments", W),
    _e("get_environment", "GET /environments/{digest}", R),
    # datasets
    _e("create_dataset_version", "POST /datasets/versions", W),
    _e("list_datasets", "GET /datasets", R),
    _e("get_dataset", "GET /datasets/{name}", R),
    _e("set_dataset_schema", "PUT /datasets/{name}/schema", W),
    _e("list_dataset_versions", "GET /datasets/{name}/versions", R),
    _e("get_dataset_version", "GET /datasets/{name}/version", R),
    _e("update_dataset_version", "PATCH /datasets/{name}/versions/{version}", W),
    _e("delete_dataset_version", "DELETE /datasets/{name}/versions/{version}", W),
    # lineage: what points at a digest or a run
    _e("versions_with_digest", "GET /lineage/dataset-versions", R),
    _e("runs_with_input", "GET /lineage/runs", R),
    _e("blob_in_use", "GET /lineage/blobs/{blob_digest}", R),
    _e("model_versions_of_runs", "GET /lineage/model-versions", R),
    # model registry
    _e("list_registered_models", "GET /models", R),
    _e("create_registered_model", "POST /models", W),
    _e("get_registered_model", "GET /models/{name}", R),
    _e("update_registered_model", "PATCH /models/{name}", W),
    _e("delete_registered_model", "DELETE /models/{name}", W),
    _e("rename_registered_model", "POST /models/{name}/rename", W),
    _e("delete_registered_model_tag", "DELETE /models/{name}/tags", W),
    _e("create_model_version", "POST /models/{name}/versions", W),
    _e("list_model_versions", "GET /models/{name}/versions", R),
    _e("get_model_version", "GET /models/{name}/version", R),
    _e("update_model_version", "PATCH /models/{name}/versions/{version}", W),
    _e("delete_model_version", "DELETE /models/{name}/versions/{version}", W),
    _e("delete_model_version_tag", "DELETE /models/{name}/versions/{version}/tags", W),
    _e("set_model_alias", "PUT /models/{name}/aliases/{alias}", W),
    _e("delete_model_alias", "DELETE /models/{name}/aliases/{alias}", W),
    _e("set_alias_policy", "PUT /models/{name}/aliases/{alias}/policy", W),
    _e("alias_requires_approval", "GET /models/{name}/aliases/{alias}/policy", R),
    _e("record_model_event", "POST /models/{name}/events", W),
    _e("model_history", "GET /models/{name}/events", R),
    _e("create_alias_request", "POST /models/{name}/alias-requests", W),
    _e("list_alias_requests", "GET /models/{name}/alias-requests", R),
    _e("decide_alias_request", "POST /alias-requests/{request_id}/decision", W),
    # schedules and triggers
    _e("create_schedule", "POST /schedules", W),
    _e("list_schedules", "GET /schedules", R),
    _e("get_schedule", "GET /schedules/{name}", R),
    _e("delete_schedule", "DELETE /schedules/{name}", W),
    _e("set_schedule_enabled", "PUT /schedules/{name}/enabled", W),
    _e("list_firings", "GET /schedules/{name}/firings", R),
    _e("claim_firing", "POST /firings", W),
    _e("record_firing_result", "POST /firings/result", W),
    _e("add_trigger_event", "POST /trigger-events", W),
    _e("list_trigger_events", "GET /trigger-events", R),
    # deployments
    _e("create_deployment", "POST /deployments", W),
    _e("list_deployments", "GET /deployments", R),
    _e("get_deployment", "GET /deployments/{name}", R),
    _e("update_deployment", "PUT /deployments/{name}", W),
    _e("delete_deployment", "DELETE /deployments/{name}", W),
    _e("deployment_history", "GET /deployments/{name}/events", R),
    # monitors and alerts
    _e("create_monitor", "POST /monitors", W),
    _e("list_monitors", "GET /monitors", R),
    _e("get_monitor", "GET /monitors/{name}", R),
    _e("update_monitor", "PUT /monitors/{name}", W),
    _e("delete_monitor", "DELETE /monitors/{name}", W),
    _e("raise_alert", "POST /alerts", W),
    _e("list_alerts", "GET /alerts", R),
    _e("get_alert", "GET /alerts/{alert_id}", R),
    _e("set_alert_status", "PUT /alerts/{alert_id}/status", W),
)

BY_METHOD: dict[str, Endpoint] = {e.method: e for e in ENDPOINTS}


def query_value(value: Any) -> str:
    """One argument as query-string text (the server reads it back by the hint)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_query(hint: Any, raw: list[str]) -> Any:
    """Read one query argument back by its hint; text that does not fit is passed on as is."""
    if _is_union(typing.get_origin(hint)):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = arms[0] if len(arms) == 1 else str
    if typing.get_origin(hint) is not None:  # a sequence of text: the argument was repeated
        return list(raw)
    text = raw[-1]
    if hint is bool:
        return {"true": True, "false": False}.get(text, text)
    if hint is int and re.fullmatch(r"-?[0-9]{1,18}", text):
        return int(text)
    return text


def is_sequence(hint: Any) -> bool:
    """Whether a query argument of this hint is a repeated one."""
    if _is_union(typing.get_origin(hint)):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = arms[0] if len(arms) == 1 else str
    return typing.get_origin(hint) is not None


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType
