"""Lineage of a served prediction: the whole triptych behind one answer.

prediction → model version (the registry entry whose source is the model files used) → the
run that logged the model → its data inputs (and the registered dataset versions with the same
content) → code (git commit, branch, digest of the uncommitted diff) → environment (Python,
platform, exact packages). Each link is read from the stores; a missing link (a model served
from a ``runs:/`` URI, a run without git) is reported as such, never guessed.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.errors import NotFound, TriptychError
from triptych.serving import predlog

if TYPE_CHECKING:
    from triptych.store.entities import Run
    from triptych.tracking.client import Client


@dataclass
class Lineage:
    """Every link from one prediction back to its data, code and environment."""

    prediction: dict[str, Any]
    model: dict[str, Any] | None
    run: dict[str, Any] | None
    data: list[dict[str, Any]] = field(default_factory=list)
    code: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # links that could not be followed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace(request_id: str, *, client: Client | None = None) -> Lineage:
    """Follow one request id through every store; NotFound when no log holds it."""
    from triptych.uris import parse_runs_uri

    c = predlog._client(client)
    serving_run, p = predlog.locate(request_id, client=c)
    lineage = Lineage(
        prediction={
            "request_id": p.request_id,
            "time_ms": p.time_ms,
            "deployment": p.deployment,
            "variant": p.variant,
            "status": p.status,
            "error": p.error,
            "latency_ms": p.latency_ms,
            "rows": len(p.inputs),
            "inputs": p.inputs,
            "outputs": p.outputs,
            "model_uri": p.model_uri,
            "serving_run_id": serving_run,
        },
        model=_model_version(c, p),
        run=None,
    )
    try:
        location = parse_runs_uri(p.model_uri)
        run = c.store.get_run(location.run_id)
    except Exception as e:  # the run was deleted or the URI is not a run's
        lineage.problems.append(f"the model's run is not available: {e}")
        return lineage
    lineage.run = _run(c, run, location.path.strip("/") or "model", lineage.problems)
    lineage.data = [_data_input(c, item) for item in run.inputs]
    if not run.inputs:
        lineage.problems.append("the run recorded no data inputs (log_input)")
    lineage.code, lineage.environment = _code_and_environment(c, run, lineage.problems)
    return lineage


def _model_version(c: Client, p: predlog.Prediction) -> dict[str, Any] | None:
    """The registered version whose files served ``p``: the one the log names, checked against
    the model URI, else any version registered from the same files."""
    from triptych.uris import parse_runs_uri

    candidates = []
    if p.model_name and p.model_version is not None:
        with contextlib.suppress(NotFound):
            candidates.append(c.store.get_model_version(p.model_name, p.model_version))
    with contextlib.suppress(TriptychError):
        run_id = parse_runs_uri(p.model_uri).run_id
        candidates.extend(c.store.model_versions_of_runs([run_id]))
    for v in candidates:
        if v.source.rstrip("/") == p.model_uri.rstrip("/"):
            return {
                "name": v.name,
                "version": v.version,
                "uri": v.uri,
                "source": v.source,
                "aliases": list(v.aliases),
                "registered_by": v.user,
                "creation_time": v.creation_time,
            }
    return None


def _run(c: Client, run: Run, model_path: str, problems: list[str]) -> dict[str, Any]:
    from triptych.models.manifest import MANIFEST_FILE, Manifest

    experiment = c.store.get_experiment(run.experiment_id)
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "name": run.name,
        "experiment": experiment.name,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "user": run.user,
        "fingerprint": run.fingerprint.digest if run.fingerprint else None,
        "metrics": dict(run.metrics),
        "model_path": model_path,
    }
    try:
        raw = c.read_artifact(run.run_id, f"{model_path}/{MANIFEST_FILE}")
        manifest = Manifest.from_json(raw, f"runs:/{run.run_id}/{model_path}")
        out["model_class"] = manifest.model_class
        out["model_sha256"] = manifest.sha256
        out["model_fingerprint"] = manifest.fingerprint
    except Exception as e:
        problems.append(f"the model's manifest could not be read: {e}")
    return out


def _data_input(c: Client, item: Any) -> dict[str, Any]:
    versions = c.store.versions_with_digest(item.digest)
    return {
        "name": item.name,
        "digest": item.digest,
        "rows": item.rows,
        "source": item.source,
        "dataset_versions": [f"datasets:/{name}@{version}" for name, version in versions],
    }


def _code_and_environment(
    c: Client, run: Run, problems: list[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from triptych.tracking import fingerprint as fp

    if run.fingerprint is None:
        problems.append("the run recorded no fingerprint (created with capture=False)")
        return None, None
    code = run.fingerprint.code
    code_out = {
        "commit": code.commit,
        "branch": code.branch,
        "remote": code.remote,
        "entry_point": code.entry_point,
        "diff_digest": code.diff_digest,
        "dirty": code.diff_digest is not None,
        "digest": code.digest,
    }
    if code.commit is None:
        problems.append("the run was not started inside a git repository: no commit")
    env_out: dict[str, Any] | None = None
    digest = run.fingerprint.env_digest
    try:
        env = c.store.get_environment(digest)
    except NotFound:
        problems.append(f"environment {digest[:12]} is not in the store")
    else:
        packages = dict(env.packages)
        env_out = {
            "digest": env.digest,
            "python": env.python,
            "platform": env.platform,
            "package_count": len(packages),
            "packages_digest": fp.sha256_text(
                "\n".join(f"{k}=={v}" for k, v in sorted(packages.items()))
            ),
            "packages": packages,
        }
    return code_out, env_out
