"""Copy an MLflow tracking store into triptych: ``triptych import mlflow --from URI``.

MLflow's store is read only through MLflow's own public client (``MlflowClient``), whatever
its backend (``sqlite:///mlflow.db``, ``http://host:5000``, …), never by reading its tables.
What is copied: experiments (by name), runs with their MLflow run ids (params, every metric
point with its step and timestamp, tags, status, times, artifacts, soft deletion), and
registered models with their descriptions, tags, versions and aliases (a model without
versions too, unless only some experiments are imported).

Idempotent: a run is keyed on its MLflow run id (triptych keeps imported ids), a model
version on ``(model name, MLflow version)`` through its ``mlflow.version`` tag, so a second
import adds nothing. Tags of experiments and models that already exist in triptych are only
added (a key triptych has keeps its value), and a description only where triptych has none.
An import stopped half-way resumes: a run without the ``triptych.import.complete`` tag gets
only what it is missing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound, TriptychError
from triptych.store.base import validate_alias, validate_key
from triptych.store.entities import Metric, RunSpec, RunStatus

if TYPE_CHECKING:
    from triptych.tracking.client import Client

log = logging.getLogger(__name__)

IMPORTED_TAG = "triptych.imported_from"
COMPLETE_TAG = "triptych.import.complete"
VERSION_TAG = "mlflow.version"
SOURCE_TAG = "mlflow.source"
MODEL_ID_TAG = "mlflow.model_id"
_STATUSES = {"FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}
_BATCH = 5000
_PAGE = 1000


@dataclass
class ImportReport:
    """What one import did (``--json`` prints it)."""

    experiments_created: int = 0
    runs_imported: int = 0
    runs_resumed: int = 0
    runs_skipped: int = 0
    metrics: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    experiment_tags_added: int = 0
    registered_models_created: int = 0
    model_tags_added: int = 0
    model_versions_imported: int = 0
    model_versions_skipped: int = 0
    aliases_set: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mlflow_client(uri: str) -> Any:
    """MLflow's own client over ``uri`` (tracking and registry), or the install hint."""
    from triptych._lazy import require

    require("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):  # MLflow would create an empty store there
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise NotFound(f"no MLflow database at {path}", hint="check the --from URI")

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class MlflowImporter:
    """One import from the MLflow store at ``source`` into ``client``'s stores."""

    def __init__(self, source: str, client: Client) -> None:
        self.source = source
        self.mlflow = mlflow_client(source)
        self.client = client
        self.store = client.store
        self.report = ImportReport()
        self._imported_runs: set[str] = set()

    # -- the whole import ---------------------------------------------------------------------
    def run(
        self,
        experiments: Sequence[str] = (),
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import the experiments named in ``experiments`` (all when empty), their runs, and
        the registered models. ``on_progress(done, total)`` is called as runs are copied."""
        from mlflow.exceptions import MlflowException

        try:
            return self._run(experiments, on_progress)
        except MlflowException as e:
            raise TriptychError(
                f"MLflow's store at {self.source} refused a request: {e.message}",
                hint="check the --from URI; nothing imported so far is lost (import again)",
            ) from e

    def _run(
        self, experiments: Sequence[str], on_progress: Callable[[int, int], None] | None
    ) -> ImportReport:
        found = list(self._experiments())
        if experiments:
            missing = set(experiments) - {e.name for e in found}
            if missing:
                raise NotFound(
                    f"no MLflow experiment named {', '.join(sorted(missing))} in {self.source}"
                )
            found = [e for e in found if e.name in set(experiments)]
        plan = [
            (e, self._target_experiment(e), list(self._runs_of(e.experiment_id))) for e in found
        ]
        total = sum(len(runs) for _, _, runs in plan)
        done = 0
        if on_progress:
            on_progress(0, total)
        for _, experiment_id, runs in plan:
            # Parents first, so a child's parent_run_id points at an imported run.
            runs.sort(key=lambda r: (r.data.tags.get("mlflow.parentRunId") is not None,
                                     r.info.start_time or 0))  # fmt: skip
            for mlflow_run in runs:
                self._import_run(experiment_id, mlflow_run)
                done += 1
                if on_progress:
                    on_progress(done, total)
        self._import_models(restrict=bool(experiments))
        return self.report

    # -- experiments and runs -----------------------------------------------------------------
    def _target_experiment(self, experiment: Any) -> str:
        tags = self._clean(experiment.tags or {}, "experiment tag")
        existing = self.store.get_experiment_by_name(experiment.name)
        if existing is not None:
            missing = {k: v for k, v in tags.items() if k not in existing.tags}
            if missing:
                self.store.set_experiment_tags(existing.experiment_id, missing)
                self.report.experiment_tags_added += len(missing)
            return existing.experiment_id
        experiment_id = self.store.create_experiment(experiment.name, tags)
        self.report.experiments_created += 1
        if experiment.lifecycle_stage == "deleted":
            self.store.set_experiment_lifecycle(experiment_id, True)
        return experiment_id

    def _experiments(self) -> Iterator[Any]:
        from mlflow.entities import ViewType

        token = None
        while True:
            page = self.mlflow.search_experiments(
                view_type=ViewType.ALL, max_results=_PAGE, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def _runs_of(self, experiment_id: str) -> Iterator[Any]:
        from mlflow.entities import ViewType

        token = None
        while True:
            page = self.mlflow.search_runs(
                [experiment_id], run_view_type=ViewType.ALL, max_results=_PAGE, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def _import_run(self, experiment_id: str, mlflow_run: Any) -> None:
        info, data = mlflow_run.info, mlflow_run.data
        run_id = info.run_id
        self._imported_runs.add(run_id)
        try:
            existing = self.store.get_run(run_id)
        except NotFound:
            existing = None
        if existing is not None and COMPLETE_TAG in existing.tags:
            self.report.runs_skipped += 1
            return
        tags = self._clean(data.tags, "tag")
        params = self._clean(data.params, "param")
        if existing is None:
            parent = data.tags.get("mlflow.parentRunId")
            if parent is not None and parent not in self._imported_runs:
                parent = None
            self.store.create_run(
                RunSpec(
                    experiment_id=experiment_id,
                    name=info.run_name or None,
                    parent_run_id=parent,
                    user=info.user_id or None,
                    start_time=info.start_time,
                    tags={**tags, IMPORTED_TAG: "mlflow"},
                    params=params,
                    run_id=run_id,
                )
            )
            self.report.runs_imported += 1
        else:
            self.store.log_batch(run_id, params=params, tags=tags)
            self.report.runs_resumed += 1
        self.report.params += len(params)
        self.report.tags += len(tags)
        for key in data.metrics:
            self._copy_metric(run_id, key, resume=existing is not None)
        self._copy_artifacts(run_id)
        status = _STATUSES.get(info.status)
        if status is not None:
            self.store.update_run(run_id, status=status, end_time=info.end_time)
        if info.lifecycle_stage == "deleted":
            self.store.set_run_lifecycle(run_id, True)
        self.store.log_batch(run_id, tags={COMPLETE_TAG: "true"})

    def _copy_metric(self, run_id: str, key: str, *, resume: bool) -> None:
        try:
            validate_key("metric", key)
        except InvalidInput as e:
            self.report.warnings.append(f"run {run_id}: {e.message}; not imported")
            return
        history = self.mlflow.get_metric_history(run_id, key)
        history.sort(key=lambda m: (m.step, m.timestamp))
        if resume:  # an interrupted import wrote a prefix of this history
            history = history[len(self.store.get_metric_history(run_id, key)) :]
        points = [Metric(key, float(m.value), int(m.step), int(m.timestamp)) for m in history]
        for start in range(0, len(points), _BATCH):
            self.store.log_batch(run_id, metrics=points[start : start + _BATCH])
        self.report.metrics += len(points)

    def _copy_artifacts(self, run_id: str) -> None:
        if not self.mlflow.list_artifacts(run_id):
            return
        with tempfile.TemporaryDirectory(prefix="triptych-mlflow-") as tmp:
            local = self.mlflow.download_artifacts(run_id, "", tmp)
            self.report.artifacts += len(self.client.log_artifacts(run_id, local))

    def _clean(self, values: dict[str, Any], kind: str) -> dict[str, str]:
        """Entries whose keys triptych accepts; the others become warnings."""
        kept = {}
        for key, value in values.items():
            try:
                kept[validate_key(kind, key)] = str(value)
            except InvalidInput as e:
                self.report.warnings.append(f"{e.message}; not imported")
        return kept

    # -- registered models ----------------------------------------------------------------------
    def _import_models(self, *, restrict: bool) -> None:
        token = None
        while True:
            page = self.mlflow.search_registered_models(max_results=_PAGE, page_token=token)
            for model in page:
                self._import_model(model, restrict=restrict)
            token = page.token
            if not token:
                return

    def _versions_of(self, name: str) -> list[Any]:
        escaped = name.replace("'", "\\'")
        found: list[Any] = []
        token = None
        while True:
            page = self.mlflow.search_model_versions(
                f"name='{escaped}'", max_results=_PAGE, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                return sorted(found, key=lambda v: int(v.version))

    def _import_model(self, model: Any, *, restrict: bool) -> None:
        name = model.name
        versions = [
            v for v in self._versions_of(name) if not restrict or v.run_id in self._imported_runs
        ]
        try:
            if not self._target_model(model, create=bool(versions) or not restrict):
                return
        except InvalidInput as e:  # a name triptych refuses (models:/ URIs must stay safe)
            self.report.warnings.append(f"model {name}: {e.message}; not imported")
            return
        mine = {v.tags.get(VERSION_TAG): v.version for v in self.store.list_model_versions(name)}
        for version in versions:
            if str(version.version) in mine:
                self.report.model_versions_skipped += 1
                continue
            source, run_id = self._model_files(version)
            tags = self._clean(version.tags or {}, "model version tag")
            tags.update({VERSION_TAG: str(version.version), SOURCE_TAG: version.source})
            if getattr(version, "model_id", None):
                tags[MODEL_ID_TAG] = version.model_id
            created = self.store.create_model_version(
                name,
                source,
                run_id=run_id,
                description=version.description or None,
                tags=tags,
                user=version.user_id or None,
                reason="imported from MLflow",
            )
            mine[str(version.version)] = created.version
            self.report.model_versions_imported += 1
        if not mine:
            return
        current = self.store.get_registered_model(name).aliases
        for alias, version in (model.aliases or {}).items():
            target = mine.get(str(version))
            if target is None or current.get(alias) == target:
                continue
            try:
                validate_alias(alias)
            except InvalidInput as e:
                self.report.warnings.append(f"model {name}: {e.message}; not imported")
                continue
            self.store.set_model_alias(name, alias, target, reason="imported from MLflow")
            self.report.aliases_set += 1

    def _target_model(self, model: Any, *, create: bool) -> bool:
        """Make sure triptych has ``model`` with MLflow's description and tags (only adding
        to a model it already has); False when it is absent and ``create`` is False."""
        tags = self._clean(model.tags or {}, "registered model tag")
        description = model.description or None
        try:
            existing = self.store.get_registered_model(model.name)
        except NotFound:
            if not create:
                return False
            self.store.create_registered_model(
                model.name, description=description, tags=tags, reason="imported from MLflow"
            )
            self.report.registered_models_created += 1
            self.report.model_tags_added += len(tags)
            return True
        missing = {k: v for k, v in tags.items() if k not in existing.tags}
        describe = description if description and not existing.description else None
        if missing or describe:
            self.store.update_registered_model(model.name, description=describe, tags=missing)
            self.report.model_tags_added += len(missing)
        return True

    def _model_files(self, version: Any) -> tuple[str, str | None]:
        """The triptych source (``runs:/<run>/<path>``) of a version, copying a logged
        model's files into its run's tree under ``models/<model_id>``."""
        run_id = version.run_id or None
        source = version.source or ""
        if run_id is not None and not self._run_exists(run_id):
            run_id = None
        if source.startswith("runs:/"):
            return source, run_id
        if source.startswith("models:/m-"):
            model_id = source[len("models:/") :].split("/", 1)[0]
            logged = self.mlflow.get_logged_model(model_id)
            run_id = run_id or logged.source_run_id
            if run_id is None or not self._run_exists(run_id):
                self.report.warnings.append(
                    f"model {version.name} v{version.version}: its logged model has no imported "
                    "run; its files were not copied"
                )
                return source, None
            path = f"models/{model_id}"
            if not self.store.walk_artifacts(run_id, path):
                self._copy_logged_model(logged.artifact_location, run_id, path)
            return f"runs:/{run_id}/{path}", run_id
        marker = f"/{run_id}/artifacts/" if run_id else None
        if marker and marker in source:
            return f"runs:/{run_id}/{source.split(marker, 1)[1].strip('/')}", run_id
        return source, run_id

    def _copy_logged_model(self, location: str, run_id: str, path: str) -> None:
        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory(prefix="triptych-mlflow-") as tmp:
            local = download_artifacts(
                artifact_uri=location, dst_path=tmp, tracking_uri=self.source
            )
            self.report.artifacts += len(self.client.log_artifacts(run_id, Path(local), path))

    def _run_exists(self, run_id: str) -> bool:
        try:
            self.store.get_run(run_id)
        except NotFound:
            return False
        return True


def import_mlflow(
    source: str,
    client: Client | None = None,
    *,
    experiments: Sequence[str] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Copy the MLflow store at ``source`` into ``client``'s stores (the resolved ones when
    None). See the module docstring for what is copied and how it stays idempotent."""
    if client is None:
        from triptych.tracking.client import Client

        client = Client()
    return MlflowImporter(source, client).run(experiments, on_progress)
