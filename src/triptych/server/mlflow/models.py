"""MLflow 3's *logged models* (``/api/2.0/mlflow/logged-models``), kept in triptych's store.

triptych has no logged-model record of its own: a logged model is a JSON record in a tag of
its source run (``mlflow.loggedModel.<key>``), and its files are in that run's artifact tree
under ``models/<model_id>/``. Its id, ``m-<run id><key>``, says which run holds it. A model
logged outside a run gets a run of its own (tagged ``mlflow.loggedModelHolder``)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from triptych.errors import NotFound
from triptych.server.mlflow.errors import invalid
from triptych.server.mlflow.routing import POST_READ, Operation
from triptych.server.permissions import Permission
from triptych.store.base import MAX_TAG_LENGTH, now_ms
from triptych.store.entities import Run, RunSpec, RunStatus

R, W = Permission.READ, Permission.WRITE
TAG_PREFIX = "mlflow.loggedModel."
HOLDER_TAG = "mlflow.loggedModelHolder"
_ID = re.compile(r"^m-(?P<run>[0-9a-zA-Z]{32})(?P<key>[0-9a-f]{8})$")
_STATUS = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def is_record_tag(key: str) -> bool:
    return key.startswith(TAG_PREFIX)


def files_path(model_id: str) -> str:
    """Where a logged model's files are in its run's artifact tree."""
    return f"models/{model_id}"


def split_id(model_id: str) -> tuple[str, str]:
    match = _ID.match(model_id or "")
    if match is None:
        raise NotFound(f"logged model {model_id!r} not found")
    return match["run"], match["key"]


def load(state: Any, model_id: str) -> tuple[Run, dict[str, Any]]:
    """The run holding ``model_id`` and its record. Raises NotFound."""
    run_id, key = split_id(model_id)
    try:
        run = state.store.get_run(run_id)
    except NotFound:
        raise NotFound(f"logged model {model_id!r} not found") from None
    raw = run.tags.get(TAG_PREFIX + key)
    if raw is None:
        raise NotFound(f"logged model {model_id!r} not found")
    record = json.loads(raw)
    if record.get("deleted"):
        raise NotFound(f"logged model {model_id!r} not found")
    return run, record


def save(state: Any, model_id: str, record: dict[str, Any]) -> None:
    run_id, key = split_id(model_id)
    record["updated"] = now_ms()
    text = json.dumps(record, separators=(",", ":"))
    if len(text) > MAX_TAG_LENGTH:  # params copied from a big run: keep the rest
        record["params"] = {}
        text = json.dumps(record, separators=(",", ":"))
    state.store.log_batch(run_id, tags={TAG_PREFIX + key: text})


def model_json(run: Run, model_id: str, record: dict[str, Any]) -> dict[str, Any]:
    source_run = None if run.tags.get(HOLDER_TAG) else run.run_id
    info: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": run.experiment_id,
        "name": record["name"],
        "creation_timestamp_ms": record["created"],
        "last_updated_timestamp_ms": record.get("updated", record["created"]),
        "artifact_uri": f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts/"
        + files_path(model_id),
        "status": record.get("status", _STATUS[0]),
        "tags": [{"key": k, "value": v} for k, v in record.get("tags", {}).items()],
    }
    if record.get("model_type"):
        info["model_type"] = record["model_type"]
    if source_run:
        info["source_run_id"] = source_run
    params = [{"key": k, "value": v} for k, v in record.get("params", {}).items()]
    return {"info": info, "data": {"params": params, "metrics": []}}


def outputs_of(run: Run) -> list[dict[str, Any]]:
    """``model_outputs`` of a run: the models logged from it."""
    found = []
    for key, raw in run.tags.items():
        if is_record_tag(key) and not run.tags.get(HOLDER_TAG):
            record = json.loads(raw)
            if not record.get("deleted"):
                found.append(
                    {
                        "model_id": f"m-{run.run_id}{key[len(TAG_PREFIX) :]}",
                        "step": record.get("step", 0),
                    }
                )
    return found


def _pairs(items: Any) -> dict[str, str]:
    from triptych.server.mlflow.tracking import from_key_values

    return from_key_values(items)


# -- handlers --
def create_logged_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``CreateLoggedModel``: recorded on its source run (or on a run of its own)."""
    from triptych.server.mlflow.tracking import experiment_id

    name = args.get("name") or "model"
    run_id = args.get("source_run_id")
    if run_id:
        state.store.get_run(run_id)
    else:
        holder = state.store.create_run(
            RunSpec(
                experiment_id(state, args.get("experiment_id") or "0"),
                name=name,
                tags={HOLDER_TAG: "true"},
            )
        )
        state.store.update_run(holder.run_id, status=RunStatus.FINISHED)
        run_id = holder.run_id
    model_id = f"m-{run_id}{uuid.uuid4().hex[:8]}"
    created = now_ms()
    record = {
        "name": name,
        "created": created,
        "status": _STATUS[0],
        "model_type": args.get("model_type") or None,
        "tags": _pairs(args.get("tags")),
        "params": _pairs(args.get("params")),
        "step": 0,
    }
    save(state, model_id, record)
    run, record = load(state, model_id)
    return {"model": model_json(run, model_id, record)}


def get_logged_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetLoggedModel``"""
    run, record = load(state, args["model_id"])
    return {"model": model_json(run, args["model_id"], record)}


def _update(state: Any, model_id: str, change: Any) -> dict[str, Any]:
    run, record = load(state, model_id)
    change(record)
    save(state, model_id, record)
    run, record = load(state, model_id)
    return {"model": model_json(run, model_id, record)}


def finalize_logged_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``FinalizeLoggedModel``: READY or UPLOAD_FAILED."""
    status = args.get("status")
    if status not in _STATUS:
        raise invalid(f"invalid logged model status {status!r}")
    return _update(state, args["model_id"], lambda r: r.update(status=status))


def set_logged_model_tags(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetLoggedModelTags``"""
    tags = _pairs(args.get("tags"))
    _update(state, args["model_id"], lambda r: r.setdefault("tags", {}).update(tags))
    return {}


def delete_logged_model_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteLoggedModelTag``"""
    _update(state, args["model_id"], lambda r: r.get("tags", {}).pop(args["tag_key"], None))
    return {}


def log_logged_model_params(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogLoggedModelParamsRequest``"""
    params = _pairs(args.get("params"))
    _update(state, args["model_id"], lambda r: r.setdefault("params", {}).update(params))
    return {}


def delete_logged_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteLoggedModel``: the record is marked deleted (its files stay in the run)."""
    _update(state, args["model_id"], lambda r: r.update(deleted=True))
    return {}


def log_outputs(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``LogOutputs``: the step at which a run logged a model."""
    run_id = args.get("run_id")
    state.store.get_run(run_id)
    for output in args.get("models") or ():
        model_id = output.get("model_id")
        if model_id and split_id(model_id)[0] == run_id:
            step = int(output.get("step") or 0)
            _update(state, model_id, lambda r, s=step: r.update(step=s))
    return {}


def search_logged_models(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SearchLoggedModels`` in the given experiments, by ``name`` and ``source_run_id``."""
    from triptych.server.mlflow.tracking import experiment_id, matches, page, parse_filter

    clauses = parse_filter(args.get("filter"), ("name", "source_run_id", "model_id"))
    ids = [experiment_id(state, e) for e in args.get("experiment_ids") or ()]
    found = []
    for run in state.store.iter_runs(ids):
        for key, raw in run.tags.items():
            if not is_record_tag(key):
                continue
            record = json.loads(raw)
            model_id = f"m-{run.run_id}{key[len(TAG_PREFIX) :]}"
            source = None if run.tags.get(HOLDER_TAG) else run.run_id
            values = {"name": record["name"], "source_run_id": source, "model_id": model_id}
            if not record.get("deleted") and matches(values, clauses):
                found.append(model_json(run, model_id, record))
    found.sort(key=lambda m: -m["info"]["creation_timestamp_ms"])
    chunk, token = page(found, args, default=100)
    answer: dict[str, Any] = {"models": chunk}
    if token:
        answer["next_page_token"] = token
    return answer


OPERATIONS = (
    Operation("POST", "/logged-models", W, create_logged_model),
    Operation("POST", "/logged-models/search", POST_READ, search_logged_models),
    Operation("GET", "/logged-models/{model_id}", R, get_logged_model),
    Operation("PATCH", "/logged-models/{model_id}", W, finalize_logged_model),
    Operation("DELETE", "/logged-models/{model_id}", W, delete_logged_model),
    Operation("PATCH", "/logged-models/{model_id}/tags", W, set_logged_model_tags),
    Operation("DELETE", "/logged-models/{model_id}/tags/{tag_key}", W, delete_logged_model_tag),
    Operation("POST", "/logged-models/{model_id}/params", W, log_logged_model_params),
    Operation("POST", "/runs/outputs", W, log_outputs),
)
