"""Registered models, model versions and aliases in MLflow's shapes (``model_registry.proto``).

They are triptych's registry: a version's ``source`` is stored as triptych's
``runs:/<run>/<path>`` when it names files of a run (MLflow's ``models:/m-…`` logged models,
``mlflow-artifacts:/…/<run>/artifacts/…``), with MLflow's own source and model id kept in
the version's tags. A model has a description and tags of its own, and may have no versions
(``CreateRegisteredModel``); renaming it takes its versions, aliases and audit trail along.
triptych has no stages: ``TransitionModelVersionStage`` is not served (use aliases)."""

from __future__ import annotations

import contextlib
from typing import Any

from triptych.errors import NotFound
from triptych.server.mlflow import models
from triptych.server.mlflow.errors import invalid, not_implemented
from triptych.server.mlflow.routing import POST_READ, Operation
from triptych.server.mlflow.tracking import (
    from_key_values,
    key_values,
    matches,
    page,
    parse_filter,
)
from triptych.server.permissions import Permission
from triptych.store.entities import ModelVersion, RegisteredModel

R, W = Permission.READ, Permission.WRITE
SOURCE_TAG = "mlflow.source"
MODEL_ID_TAG = "mlflow.model_id"
_HIDDEN = (SOURCE_TAG, MODEL_ID_TAG)


def version_json(v: ModelVersion) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_time,
        "last_updated_timestamp": v.creation_time,
        "user_id": v.user or "",
        "current_stage": "None",
        "description": v.description or "",
        "source": v.tags.get(SOURCE_TAG, v.source),
        "status": "READY",
        "tags": key_values({k: t for k, t in v.tags.items() if k not in _HIDDEN}),
        "aliases": list(v.aliases),
    }
    if v.run_id:
        answer["run_id"] = v.run_id
    if v.tags.get(MODEL_ID_TAG):
        answer["model_id"] = v.tags[MODEL_ID_TAG]
    return answer


def model_json(state: Any, m: RegisteredModel, *, latest: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.creation_time,
        "last_updated_timestamp": m.last_update_time,
        "description": m.description or "",
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(m.aliases.items())],
        "tags": key_values(m.tags),
    }
    if latest and m.latest_version is not None:
        answer["latest_versions"] = [
            version_json(state.store.get_model_version(m.name, m.latest_version))
        ]
    return answer


def _name(args: dict[str, Any]) -> str:
    name = args.get("name")
    if not name:
        raise invalid("a registered model needs a name")
    return str(name)


def _version(args: dict[str, Any]) -> int:
    try:
        return int(args.get("version"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise invalid(f"invalid model version {args.get('version')!r}") from None


# -- registered models --
def create_registered_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``CreateRegisteredModel`` (with its description and tags, no versions):
    RESOURCE_ALREADY_EXISTS for a known name."""
    model = state.store.create_registered_model(
        _name(args),
        description=args.get("description") or None,
        tags=from_key_values(args.get("tags")),
        reason="created through MLflow's API",
    )
    return {"registered_model": model_json(state, model)}


def update_registered_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``UpdateRegisteredModel`` (its description)"""
    name = _name(args)
    if args.get("description") is not None:
        state.store.update_registered_model(name, description=str(args["description"]))
    return {"registered_model": model_json(state, state.store.get_registered_model(name))}


def rename_registered_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``RenameRegisteredModel``: versions, aliases and the audit trail follow."""
    new_name = args.get("new_name")
    if not new_name:
        raise invalid("a new name is required")
    model = state.store.rename_registered_model(
        _name(args), str(new_name), reason="renamed through MLflow's API"
    )
    return {"registered_model": model_json(state, model)}


def set_registered_model_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetRegisteredModelTag``"""
    if not args.get("key"):
        raise invalid("a tag needs a key")
    state.store.update_registered_model(
        _name(args), tags={str(args["key"]): str(args.get("value", ""))}
    )
    return {}


def delete_registered_model_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteRegisteredModelTag``; as in MLflow, a tag the model does not have is no error."""
    name = _name(args)
    state.store.get_registered_model(name)  # RESOURCE_DOES_NOT_EXIST for an unknown model
    with contextlib.suppress(NotFound):
        state.store.delete_registered_model_tag(name, str(args.get("key") or ""))
    return {}


def get_registered_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetRegisteredModel``"""
    return {"registered_model": model_json(state, state.store.get_registered_model(_name(args)))}


def search_registered_models(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SearchRegisteredModels`` by name and tags (``=``, ``!=``, ``LIKE``, ``ILIKE``); a
    model without tag ``x`` matches ``tags.x != 'y'`` (how MLflow's client leaves prompts out)."""
    clauses = parse_filter(args.get("filter"), ("name", "tags"))
    found = [
        m
        for m in state.store.list_registered_models()
        if matches({"name": m.name, **{f"tags.{k}": v for k, v in m.tags.items()}}, clauses)
    ]
    chunk, token = page(found, args, default=100)
    answer: dict[str, Any] = {"registered_models": [model_json(state, m) for m in chunk]}
    if token:
        answer["next_page_token"] = token
    return answer


def delete_registered_model(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteRegisteredModel``: the model with every version and alias; the audit trail
    records each deletion."""
    state.store.delete_registered_model(_name(args), reason="deleted through MLflow's API")
    return {}


def get_latest_versions(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetLatestVersions``: triptych has no stages; the latest version stands for "None"."""
    m = state.store.get_registered_model(_name(args))
    stages = args.get("stages") or []
    if m.latest_version is None or (stages and "None" not in stages):
        return {"model_versions": []}
    return {
        "model_versions": [version_json(state.store.get_model_version(m.name, m.latest_version))]
    }


# -- versions --
def _triptych_source(state: Any, source: str, run_id: str | None) -> tuple[str, str | None]:
    """triptych's ``runs:/`` source for MLflow's, and the run it belongs to."""
    if source.startswith("models:/m-"):
        model_id = source[len("models:/") :].split("/", 1)[0]
        run, _ = models.load(state, model_id)
        return f"runs:/{run.run_id}/{models.files_path(model_id)}", run.run_id
    if source.startswith("mlflow-artifacts:/"):
        parts = source[len("mlflow-artifacts:/") :].strip("/").split("/")
        if len(parts) >= 3 and parts[2] == "artifacts":
            return f"runs:/{parts[1]}/{'/'.join(parts[3:])}".rstrip("/"), parts[1]
    return source, run_id


def create_model_version(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``CreateModelVersion``: the next version of the model (created with its first)."""
    name, source = _name(args), args.get("source") or ""
    if not source:
        raise invalid("a model version needs a source")
    run_id = args.get("run_id") or None
    model_id = args.get("model_id") or None
    if model_id and not source.startswith("models:/m-"):
        source_for_files = f"models:/{model_id}"
    else:
        source_for_files = source
    stored, owner = _triptych_source(state, source_for_files, run_id)
    tags = from_key_values(args.get("tags"))
    tags[SOURCE_TAG] = source
    if model_id or source.startswith("models:/m-"):
        tags[MODEL_ID_TAG] = model_id or source[len("models:/") :].split("/", 1)[0]
    version = state.store.create_model_version(
        name,
        stored,
        run_id=run_id or owner,
        description=args.get("description") or None,
        tags=tags,
        reason="registered through MLflow's API",
    )
    return {"model_version": version_json(version)}


def get_model_version(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetModelVersion``"""
    return {
        "model_version": version_json(state.store.get_model_version(_name(args), _version(args)))
    }


def update_model_version(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``UpdateModelVersion`` (its description)"""
    name, version = _name(args), _version(args)
    if args.get("description") is not None:
        state.store.update_model_version(name, version, description=args["description"])
    return {"model_version": version_json(state.store.get_model_version(name, version))}


def set_model_version_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetModelVersionTag``"""
    if not args.get("key"):
        raise invalid("a tag needs a key")
    state.store.update_model_version(
        _name(args), _version(args), tags={str(args["key"]): str(args.get("value", ""))}
    )
    return {}


def delete_model_version_tag(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteModelVersionTag``; as in MLflow, a tag the version does not have is no error."""
    name, version = _name(args), _version(args)
    key = str(args.get("key") or "")
    if key in _HIDDEN:  # triptych's record of MLflow's source and model id stays
        return {}
    state.store.get_model_version(name, version)  # RESOURCE_DOES_NOT_EXIST for unknown ones
    with contextlib.suppress(NotFound):
        state.store.delete_model_version_tag(name, version, key)
    return {}


def transition_stage(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``TransitionModelVersionStage``: NOT_IMPLEMENTED (triptych has aliases, not stages)."""
    state.store.get_model_version(_name(args), _version(args))
    raise not_implemented("moving a model version between stages (set an alias instead)")


def delete_model_version(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteModelVersion``"""
    state.store.delete_model_version(
        _name(args), _version(args), reason="deleted through MLflow's API"
    )
    return {}


def search_model_versions(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SearchModelVersions`` by ``name``, ``run_id``, ``source_path`` (``=``, ``LIKE``…)."""
    clauses = parse_filter(args.get("filter"), ("name", "run_id", "source_path", "tags"))
    names = [value for key, op, value in clauses if key == "name" and op == "="]
    if names:
        models_ = []
        for n in names[:1]:
            with contextlib.suppress(NotFound):
                models_.append(state.store.get_registered_model(n))
    else:
        models_ = state.store.list_registered_models()
    found = []
    for m in models_:
        for v in state.store.list_model_versions(m.name):
            source = v.tags.get(SOURCE_TAG, v.source)
            values = {
                "name": v.name,
                "run_id": v.run_id,
                "source_path": source,
                **{f"tags.{k}": t for k, t in v.tags.items()},
            }
            if matches(values, clauses):
                found.append(v)
    found.sort(key=lambda v: (v.name, -v.version))
    chunk, token = page(found, args, default=1000)
    answer: dict[str, Any] = {"model_versions": [version_json(v) for v in chunk]}
    if token:
        answer["next_page_token"] = token
    return answer


def get_download_uri(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetModelVersionDownloadUri``: the files' ``mlflow-artifacts:/`` address."""
    v = state.store.get_model_version(_name(args), _version(args))
    if v.source.startswith("runs:/"):
        run_id, _, path = v.source[len("runs:/") :].partition("/")
        run = state.store.get_run(run_id)
        uri = f"mlflow-artifacts:/{run.experiment_id}/{run_id}/artifacts/{path}".rstrip("/")
        return {"artifact_uri": uri}
    return {"artifact_uri": v.source}


# -- aliases --
def set_alias(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``SetRegisteredModelAlias``"""
    alias = args.get("alias")
    if not alias:
        raise invalid("an alias is required")
    state.store.set_model_alias(
        _name(args), str(alias), _version(args), reason="set through MLflow's API"
    )
    return {}


def delete_alias(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``DeleteRegisteredModelAlias``"""
    state.store.delete_model_alias(
        _name(args), str(args.get("alias")), reason="removed through MLflow's API"
    )
    return {}


def get_by_alias(state: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``GetModelVersionByAlias``"""
    version = state.store.get_model_version(_name(args), alias=str(args.get("alias")))
    return {"model_version": version_json(version)}


OPERATIONS = (
    Operation("POST", "/registered-models/create", W, create_registered_model),
    Operation("GET", "/registered-models/get", R, get_registered_model),
    Operation("PATCH", "/registered-models/update", W, update_registered_model),
    Operation("POST", "/registered-models/rename", W, rename_registered_model),
    Operation("POST", "/registered-models/set-tag", W, set_registered_model_tag),
    Operation("DELETE", "/registered-models/delete-tag", W, delete_registered_model_tag),
    Operation("GET", "/registered-models/search", R, search_registered_models),
    Operation("DELETE", "/registered-models/delete", W, delete_registered_model),
    Operation("POST", "/registered-models/get-latest-versions", POST_READ, get_latest_versions),
    Operation("POST", "/registered-models/alias", W, set_alias),
    Operation("DELETE", "/registered-models/alias", W, delete_alias),
    Operation("GET", "/registered-models/alias", R, get_by_alias),
    Operation("POST", "/model-versions/create", W, create_model_version),
    Operation("GET", "/model-versions/get", R, get_model_version),
    Operation("PATCH", "/model-versions/update", W, update_model_version),
    Operation("POST", "/model-versions/set-tag", W, set_model_version_tag),
    Operation("DELETE", "/model-versions/delete-tag", W, delete_model_version_tag),
    Operation("POST", "/model-versions/transition-stage", W, transition_stage),
    Operation("DELETE", "/model-versions/delete", W, delete_model_version),
    Operation("GET", "/model-versions/search", R, search_model_versions),
    Operation("GET", "/model-versions/get-download-uri", R, get_download_uri),
)
