"""Experiments, runs, metrics, params and tags in MLflow's shapes (``service.proto``).

Ids: an experiment's MLflow id is triptych's (an integer from the database as a string);
MLflow's default experiment ``"0"`` is triptych's ``Default``. Run ids are triptych's own
32-hex ids, the same form as MLflow's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from triptych.errors import NotFound
from triptych.server.mlflow import models
from triptych.server.mlflow.errors import invalid
from triptych.server.mlflow.routing import POST_READ, Operation
from triptych.server.permissions import Permission
from triptych.store.base import DEFAULT_EXPERIMENT, now_ms
from triptych.store.entities import Experiment, Lifecycle, Metric, Run, RunSpec, RunStatus

R, W = Permission.READ, Permission.WRITE
_STATUSES = {s.value for s in RunStatus}


# -- shapes --
def key_values(values: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in values.items()]


def from_key_values(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        if not isinstance(item, Mapping) or "key" not in item:
            raise invalid("expected a list of {key, value} objects")
        out[str(item["key"])] = "" if item.get("value") is None else str(item["value"])
    return out


def artifact_root(experiment_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(run: Run) -> str:
    return f"{artifact_root(run.experiment_id)}/{run.run_id}/artifacts"


def experiment_json(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": artifact_root(e.experiment_id),
        "lifecycle_stage": e.lifecycle.value,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": key_values(e.tags),
    }


def run_info_json(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.user or "",
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle.value,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(run: Run, metric_times: Mapping[str, Metric] | None = None) -> dict[str, Any]:
    """A run; latest metrics carry their step and time when ``metric_times`` has them."""
    metrics = []
    for key, value in run.metrics.items():
        point = (metric_times or {}).get(key)
        metrics.append(
            {
                "key": key,
                "value": _number(value),
                "timestamp": point.timestamp if point else run.start_time,
                "step": point.step if point else 0,
            }
        )
    tags = {k: v for k, v in run.tags.items() if not models.is_record_tag(k)}
    tags.setdefault("mlflow.runName", run.name)
    if run.user:
        tags.setdefault("mlflow.user", run.user)
    if run.parent_run_id:
        tags.setdefault("mlflow.parentRunId", run.parent_run_id)
    return {
        "info": run_info_json(run),
        "data": {"metrics": metrics, "params": key_values(run.params), "tags": key_values(tags)},
        "inputs": {
            "dataset_inputs": [
                {
                    "dataset": {
                        "name": i.name,
                        "digest": i.digest,
                        "source_type": "triptych",
                        "source": i.source or "",
                    }
                }
                for i in run.inputs
            ]
        },
        "outputs": {"model_outputs": models.outputs_of(run)},
    }


def _number(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _metric(item: Mapping[str, Any]) -> Metric:
    if "key" not in item or "value" not in item:
        raise invalid("a metric needs a key and a value")
    value = item["value"]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise invalid(f"metric {item['key']!r} must be a number, got {value!r}") from None
    return Metric(
        str(item["key"]), number, int(item.get("step") or 0), int(item.get("timestamp") or now_ms())
    )


# -- experiments --
def experiment_id(state: Any, value: Any) -> str:
    """Triptych's id for MLflow's ``value`` ("0" is the default experiment)."""
    if value is None or value == "":
        raise invalid("experiment_id is required")
    text = str(value)
    if text == "0":
        return str(state.store.get_or_create_experiment(DEFAULT_EXPERIMENT).experiment_id)
    if not text.isdigit():
        raise NotFound(f"experiment {text!r} not found")
    return text


def create_experiment(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``CreateExperiment``; ``artifact_location`` is ignored (artifacts go through the server)."""
    name = args.get("name")
    if not name:
        raise invalid("an experiment needs a name")
    return {"experiment_id": state.store.create_experiment(name, from_key_values(args.get("tags")))}


def get_experiment(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetExperiment``"""
    found = state.store.get_experiment(experiment_id(state, args.get("experiment_id")))
    return {"experiment": experiment_json(found)}


def get_experiment_by_name(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetExperimentByName``"""
    name = args.get("experiment_name")
    found = state.store.get_experiment_by_name(name) if name else None
    if found is None:
        raise NotFound(f"experiment {name!r} not found")
    return {"experiment": experiment_json(found)}


_CLAUSE = re.compile(
    r"^\s*(?P<key>(?:[A-Za-z_]+\.)?(?:`[^`]+`|[\w.]+))\s*(?P<op>=|!=|LIKE|ILIKE)\s*"
    r"(?P<q>['\"])(?P<value>.*)(?P=q)\s*$",
    re.IGNORECASE,
)


def parse_filter(text: str | None, keys: Iterable[str]) -> list[tuple[str, str, str]]:
    """``name = 'x' AND tags.team LIKE 'd%'`` as ``(key, op, value)``; the small filter
    language MLflow's client sends for experiments and models."""
    allowed = set(keys)
    clauses = []
    for part in re.split(r"\s+AND\s+", (text or "").strip(), flags=re.IGNORECASE):
        if not part:
            continue
        match = _CLAUSE.match(part)
        if match is None:
            raise invalid(f"unsupported filter {part!r}")
        key = match["key"].replace("`", "")
        prefix, _, rest = key.partition(".")
        if rest and prefix in ("tag", "tags"):
            key = f"tags.{rest}"
        elif rest and prefix in ("attribute", "attributes", "attr"):
            key = rest
        if key not in allowed and not (key.startswith("tags.") and "tags" in allowed):
            raise invalid(f"unsupported filter key {key!r}")
        clauses.append((key, match["op"].upper(), match["value"]))
    return clauses


def matches(values: Mapping[str, str | None], clauses: list[tuple[str, str, str]]) -> bool:
    for key, op, wanted in clauses:
        value = values.get(key)
        if op in ("LIKE", "ILIKE"):
            pattern = "".join(
                ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in wanted
            )
            flags = re.IGNORECASE if op == "ILIKE" else 0
            if value is None or not re.fullmatch(pattern, value, flags | re.DOTALL):
                return False
        elif (value == wanted) != (op == "="):
            return False
    return True


def page(
    items: list[Any], args: dict[str, Any], default: int = 1000
) -> tuple[list[Any], str | None]:
    """One page of ``items`` by MLflow's ``max_results`` and ``page_token`` (an offset)."""
    try:
        size = int(args.get("max_results") or default)
        start = int(args.get("page_token") or 0)
    except ValueError:
        raise invalid("invalid max_results or page_token") from None
    chunk = items[start : start + size]
    return chunk, str(start + size) if start + size < len(items) else None


def search_experiments(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SearchExperiments``: by name and tags (``=``, ``!=``, ``LIKE``, ``ILIKE``)."""
    view = args.get("view_type") or "ACTIVE_ONLY"
    clauses = parse_filter(args.get("filter"), ("name", "tags"))
    found = []
    for e in state.store.list_experiments(include_deleted=view != "ACTIVE_ONLY"):
        if view == "DELETED_ONLY" and e.lifecycle is not Lifecycle.DELETED:
            continue
        values = {
            "name": e.name,
            **{f"tags.{k}": v for k, v in e.tags.items()},
        }
        if matches(values, clauses):
            found.append(e)
    found.sort(key=lambda e: -e.creation_time)  # MLflow: newest first
    chunk, token = page(found, args)
    answer: dict[str, Any] = {"experiments": [experiment_json(e) for e in chunk]}
    if token:
        answer["next_page_token"] = token
    return answer


def update_experiment(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``UpdateExperiment`` (a new name)"""
    if args.get("new_name"):
        state.store.rename_experiment(
            experiment_id(state, args.get("experiment_id")), args["new_name"]
        )
    return {}


def delete_experiment(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteExperiment`` (soft)"""
    state.store.set_experiment_lifecycle(experiment_id(state, args.get("experiment_id")), True)
    return {}


def restore_experiment(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``RestoreExperiment``"""
    state.store.set_experiment_lifecycle(experiment_id(state, args.get("experiment_id")), False)
    return {}


def set_experiment_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetExperimentTag``"""
    if not args.get("key"):
        raise invalid("a tag needs a key")
    state.store.set_experiment_tags(
        experiment_id(state, args.get("experiment_id")),
        {str(args["key"]): str(args.get("value", ""))},
    )
    return {}


def delete_experiment_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteExperimentTag``: RESOURCE_DOES_NOT_EXIST for a tag it does not have."""
    state.store.delete_experiment_tag(
        experiment_id(state, args.get("experiment_id")), str(args.get("key") or "")
    )
    return {}


# -- runs --
def _run_id(args: dict[str, Any]) -> str:
    run_id = args.get("run_id") or args.get("run_uuid")
    if not run_id:
        raise invalid("run_id is required")
    return str(run_id)


def create_run(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``CreateRun``: an ordinary triptych run (MLflow's ``mlflow.*`` tags kept as tags)."""
    tags = from_key_values(args.get("tags"))
    parent = tags.get("mlflow.parentRunId") or None
    run = state.store.create_run(
        RunSpec(
            experiment_id=experiment_id(state, args.get("experiment_id") or "0"),
            name=args.get("run_name") or tags.get("mlflow.runName") or None,
            parent_run_id=parent,
            user=args.get("user_id") or tags.get("mlflow.user") or None,
            start_time=int(args["start_time"]) if args.get("start_time") else None,
            tags=tags,
            # MLflow's client does not heartbeat; a stale sweep must not fail its runs.
            heartbeat_timeout=7 * 24 * 3600.0,
        )
    )
    return {"run": run_json(run)}


def get_run(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetRun``"""
    run = state.store.get_run(_run_id(args))
    return {"run": run_json(run, _latest_points(state, run))}


def _latest_points(state: Any, run: Run) -> dict[str, Metric]:
    points = {}
    for key in run.metrics:
        history = state.store.get_metric_history(run.run_id, key)
        if history:
            points[key] = history[-1]
    return points


def update_run(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``UpdateRun``: status, end time, name."""
    run_id = _run_id(args)
    status = args.get("status")
    if status is not None and status not in _STATUSES:
        if status != "SCHEDULED":
            raise invalid(f"invalid run status {status!r}")
        status = "RUNNING"
    state.store.update_run(
        run_id,
        status=RunStatus(status) if status else None,
        end_time=int(args["end_time"]) if args.get("end_time") else None,
        name=args.get("run_name") or None,
    )
    return {"run_info": run_info_json(state.store.get_run(run_id))}


def delete_run(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteRun`` (soft)"""
    state.store.set_run_lifecycle(_run_id(args), True)
    return {}


def restore_run(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``RestoreRun``"""
    state.store.set_run_lifecycle(_run_id(args), False)
    return {}


def log_metric(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogMetric``"""
    state.store.log_batch(_run_id(args), metrics=[_metric(args)])
    return {}


def log_param(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogParam``"""
    if "key" not in args:
        raise invalid("a param needs a key")
    state.store.log_batch(_run_id(args), params={str(args["key"]): str(args.get("value", ""))})
    return {}


def set_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetTag``; ``mlflow.runName`` also renames the run, as in MLflow."""
    if "key" not in args:
        raise invalid("a tag needs a key")
    run_id, key, value = _run_id(args), str(args["key"]), str(args.get("value", ""))
    state.store.log_batch(run_id, tags={key: value})
    if key == "mlflow.runName" and value:
        state.store.update_run(run_id, name=value)
    return {}


def delete_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteTag``: RESOURCE_DOES_NOT_EXIST for a tag the run does not have, as in MLflow."""
    run_id, key = _run_id(args), str(args.get("key") or "")
    if models.is_record_tag(key):  # a logged model's record is not a tag MLflow shows
        raise NotFound(f"run {run_id!r} has no tag {key!r}")
    state.store.delete_run_tag(run_id, key)
    return {}


def log_batch(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogBatch``: metrics, params and tags in one transaction."""
    run_id = _run_id(args)
    raw = list(args.get("metrics") or ())
    metrics = [_metric(m) for m in raw]
    linked = [_metric(m) for m in raw if isinstance(m, dict) and m.get("model_id")]
    if linked:  # log_model links a run's points to the model by logging them again
        have = {
            (p.key, p.step, p.timestamp, p.value)
            for key in {m.key for m in linked}
            for p in state.store.get_metric_history(run_id, key)
        }
        metrics = [m for m in metrics if (m.key, m.step, m.timestamp, m.value) not in have]
    state.store.log_batch(
        run_id,
        metrics=metrics,
        params=from_key_values(args.get("params")),
        tags=from_key_values(args.get("tags")),
    )
    return {}


def log_inputs(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogInputs``: datasets become the run's data inputs (by MLflow's digest)."""
    from triptych.store.entities import DataInput

    inputs = []
    for item in args.get("datasets") or ():
        dataset = item.get("dataset") or {}
        if dataset.get("name") and dataset.get("digest"):
            source = dataset.get("source")
            inputs.append(
                DataInput(
                    str(dataset["name"]),
                    "mlflow:" + str(dataset["digest"]),
                    source=str(source)[:1000] if source else None,
                )
            )
    if inputs:
        state.store.log_inputs(_run_id(args), inputs)
    else:
        state.store.get_run(_run_id(args))
    return {}


def get_metric_history(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetMetricHistory``: every point of one metric."""
    key = args.get("metric_key")
    if not key:
        raise invalid("metric_key is required")
    history = state.store.get_metric_history(_run_id(args), key)
    chunk, token = page(history, args, default=len(history) or 1)
    answer: dict[str, Any] = {
        "metrics": [
            {"key": m.key, "value": _number(m.value), "timestamp": m.timestamp, "step": m.step}
            for m in chunk
        ]
    }
    if token:
        answer["next_page_token"] = token
    return answer


_MLFLOW_ATTRIBUTES = {"run_name": "name", "user_id": "user", "run_id": "run_id"}
_ATTR = re.compile(r"\b(attributes?\.|attr\.)?(run_name|user_id)\b")


def _translate(expression: str) -> str:
    """MLflow's attribute names in a filter or ordering as triptych's."""
    return _ATTR.sub(lambda m: f"{m.group(1) or ''}{_MLFLOW_ATTRIBUTES[m.group(2)]}", expression)


def search_runs(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SearchRuns`` with triptych's filter language (which reads MLflow's filters)."""
    ids = [experiment_id(state, e) for e in args.get("experiment_ids") or ()]
    view = args.get("run_view_type") or "ACTIVE_ONLY"
    filter_string = _translate(args.get("filter") or "")
    if view == "DELETED_ONLY":
        filter_string = " and ".join(p for p in (filter_string, "lifecycle = 'deleted'") if p)
    found = state.store.search_runs(
        ids,
        filter_string,
        [_translate(o) for o in args.get("order_by") or ()],
        max_results=int(args.get("max_results") or 1000),
        page_token=args.get("page_token") or None,
        include_deleted=view != "ACTIVE_ONLY",
    )
    answer: dict[str, Any] = {"runs": [run_json(r) for r in found.items]}
    if found.next_page_token:
        answer["next_page_token"] = found.next_page_token
    return answer


OPERATIONS = (
    Operation("POST", "/experiments/create", W, create_experiment),
    Operation("GET", "/experiments/get", R, get_experiment),
    Operation("GET", "/experiments/get-by-name", R, get_experiment_by_name),
    Operation("POST", "/experiments/search", POST_READ, search_experiments),
    Operation("POST", "/experiments/update", W, update_experiment),
    Operation("POST", "/experiments/delete", W, delete_experiment),
    Operation("POST", "/experiments/restore", W, restore_experiment),
    Operation("POST", "/experiments/set-experiment-tag", W, set_experiment_tag),
    Operation("POST", "/experiments/delete-experiment-tag", W, delete_experiment_tag),
    Operation("POST", "/runs/create", W, create_run),
    Operation("GET", "/runs/get", R, get_run),
    Operation("POST", "/runs/update", W, update_run),
    Operation("POST", "/runs/delete", W, delete_run),
    Operation("POST", "/runs/restore", W, restore_run),
    Operation("POST", "/runs/search", POST_READ, search_runs),
    Operation("POST", "/runs/log-metric", W, log_metric),
    Operation("POST", "/runs/log-parameter", W, log_param),
    Operation("POST", "/runs/set-tag", W, set_tag),
    Operation("POST", "/runs/delete-tag", W, delete_tag),
    Operation("POST", "/runs/log-batch", W, log_batch),
    Operation("POST", "/runs/log-inputs", W, log_inputs),
    Operation("GET", "/metrics/get-history", R, get_metric_history),
)
