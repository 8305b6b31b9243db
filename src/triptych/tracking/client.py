"""The tracking client: every operation on experiments, runs and their artifacts.

The fluent API (``triptych.start_run`` …) is a thin layer over this class. A client talks to
one metadata store and one artifact store, resolved from settings; several clients on the same
URLs share connections and the background writer.
"""

from __future__ import annotations

import getpass
import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from triptych import config
from triptych.artifacts import open_artifact_store, paths
from triptych.artifacts.base import ArtifactStore
from triptych.errors import InvalidInput, NotFound, PermissionDenied
from triptych.store import open_store
from triptych.store.base import MAX_TAG_LENGTH, MetadataStore, now_ms, validate_metric
from triptych.store.entities import (
    ArtifactEntry,
    DataInput,
    Environment,
    Experiment,
    Metric,
    Page,
    Run,
    RunSpec,
    RunStatus,
)
from triptych.tracking import fingerprint as fp
from triptych.tracking.writer import BatchWriter

SWEEP_EVERY = 5.0  # seconds between checks for runs whose process died
_shared_lock = threading.Lock()
_writers: dict[str, BatchWriter] = {}
_known_envs: set[tuple[str, str]] = set()


class Client:
    """Low-level access to the stores; see ``docs/tracking.md`` for a tour."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
        *,
        settings: config.Settings | None = None,
    ) -> None:
        self.settings = settings or config.resolve(
            {"tracking_uri": tracking_uri, "artifact_uri": artifact_uri}
        )
        self._store: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._last_sweep = 0.0

    def __repr__(self) -> str:
        from triptych.uris import redact

        return f"Client({redact(self.settings.tracking_uri)!r})"

    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            self._store = open_store(self.settings.tracking_uri)
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = open_artifact_store(
                self.settings.artifact_uri, self.settings.s3_endpoint_url
            )
        return self._artifacts

    @property
    def writer(self) -> BatchWriter:
        """The process-wide background writer of this client's store."""
        url = self.settings.tracking_uri
        with _shared_lock:
            writer = _writers.get(url)
            if writer is None:
                writer = _writers[url] = BatchWriter(
                    self.store, self.settings.flush_interval, self.settings.heartbeat_interval
                )
        return writer

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        return self.store.create_experiment(name, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def resolve_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by name, or by id when no experiment has that name."""
        found = self.store.get_experiment_by_name(id_or_name)
        if found is not None:
            return found
        if id_or_name.isdigit():
            return self.store.get_experiment(id_or_name)
        raise NotFound(
            f"experiment {id_or_name!r} not found", hint="list them with: triptych experiments list"
        )

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.store.list_experiments(include_deleted)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(str(experiment_id), deleted=True)

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(str(experiment_id), deleted=False)

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        capture: bool = True,
    ) -> Run:
        """Start a RUNNING run, recording the code and environment legs of its fingerprint
        (``capture=False`` skips both, e.g. for imports)."""
        if experiment_id is None:
            experiment_id = self.store.get_or_create_experiment("Default").experiment_id
        code = env = None
        extra_artifacts: list[ArtifactEntry] = []
        fingerprint = None
        if capture:
            code, diff = fp.code_state()
            env = fp.environment()
            self._ensure_environment(env)
            if diff:
                blob = self.artifacts.put_bytes(diff)
                extra_artifacts.append(ArtifactEntry(fp.DIFF_ARTIFACT, blob.digest, blob.size))
            _, fingerprint = fp.combine(code.digest, env.digest, [])
            # The command-line arguments, so that `triptych reproduce` can run it again.
            args = json.dumps(fp.command_args())
            if len(args) <= MAX_TAG_LENGTH:
                tags = {fp.ARGV_TAG: args, **(tags or {})}
        run = self.store.create_run(
            RunSpec(
                experiment_id=str(experiment_id),
                name=name,
                parent_run_id=parent_run_id,
                user=_user(),
                tags={k: str(v) for k, v in (tags or {}).items()},
                params={k: str(v) for k, v in (params or {}).items()},
                code=code,
                env_digest=env.digest if env else None,
                fingerprint=fingerprint,
                heartbeat_timeout=self.settings.heartbeat_timeout,
                artifacts=tuple(extra_artifacts),
            )
        )
        return run

    def _ensure_environment(self, env: Environment) -> None:
        key = (self.settings.tracking_uri, env.digest)
        if key in _known_envs:
            return
        self.store.put_environment(env)
        with _shared_lock:
            _known_envs.add(key)

    def get_run(self, run_id: str) -> Run:
        self._maybe_sweep()
        return self.store.get_run(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """Runs matching ``filter_string`` (see ``triptych.store.search``); all active
        experiments when ``experiment_ids`` is None."""
        self._maybe_sweep()
        if experiment_ids is None:
            experiment_ids = [e.experiment_id for e in self.store.list_experiments()]
        elif isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        return self.store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string,
            list(order_by),
            max_results,
            page_token,
            include_deleted,
        )

    def find_run(self, id_or_prefix: str) -> Run:
        """A run by full id, or by a unique prefix of at least 4 characters (as git does)."""
        text = id_or_prefix.strip()
        if not text.isalnum():
            raise InvalidInput(f"invalid run id {id_or_prefix!r}", hint="run ids are hex strings")
        try:
            return self.get_run(text)
        except NotFound:
            if len(text) < 4 or len(text) >= 32:
                raise
        page = self.search_runs(None, f"run_id LIKE '{text}%'", max_results=2, include_deleted=True)
        if not page.items:
            raise NotFound(f"no run id starts with {text!r}", hint="list runs: triptych runs list")
        if len(page.items) > 1:
            raise InvalidInput(f"run id prefix {text!r} is ambiguous", hint="give more characters")
        return page.items[0]

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0) -> None:
        self.store.log_batch(run_id, [validate_metric(Metric(key, value, step, now_ms()))])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, params={key: str(value)})

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, tags={key: str(value)})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.store.log_batch(
            run_id,
            list(metrics),
            {k: str(v) for k, v in (params or {}).items()},
            {k: str(v) for k, v in (tags or {}).items()},
        )

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidInput(
                f"unknown run status {status!r}",
                hint=f"use one of {', '.join(s.value for s in RunStatus)}",
            ) from None
        self.store.update_run(run_id, status=status, end_time=end_time)

    def delete_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, deleted=True)

    def restore_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, deleted=False)

    def fail_stale_runs(self) -> list[str]:
        """Mark FAILED the RUNNING runs whose process stopped heartbeating."""
        self._last_sweep = time.monotonic()
        return self.store.fail_stale_runs()

    def _maybe_sweep(self) -> None:
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY:
            try:
                self.fail_stale_runs()
            except PermissionDenied:  # a viewer of a server with --auth: the sweep is a write
                self._last_sweep = time.monotonic()

    # -- artifacts --------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Store a file as ``<artifact_path>/<file name>`` in the run."""
        local = Path(local_path)
        if local.is_dir():
            raise InvalidInput(f"{local} is a folder", hint="use log_artifacts for folders")
        target = paths.join(artifact_path, local.name)
        self.store.get_run(run_id)  # fail before uploading to a run that does not exist
        blob = self.artifacts.put_file(local)
        entry = ArtifactEntry(target, blob.digest, blob.size)
        self.store.record_artifacts(run_id, [entry])
        return entry

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store every file under ``local_dir``; symlinks leading outside it are refused."""
        folder = Path(local_dir)
        if not folder.is_dir():
            raise NotFound(f"no folder at {folder}")
        files = paths.local_files(folder)
        self.store.get_run(run_id)
        entries = []
        for file, rel in files:
            blob = self.artifacts.put_file(file)
            entries.append(ArtifactEntry(paths.join(artifact_path, rel), blob.digest, blob.size))
        self.store.record_artifacts(run_id, entries)
        return entries

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactEntry:
        target = paths.normalise(artifact_file)
        self.store.get_run(run_id)
        blob = self.artifacts.put_bytes(data)
        entry = ArtifactEntry(target, blob.digest, blob.size)
        self.store.record_artifacts(run_id, [entry])
        return entry

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactEntry:
        return self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        """JSON, or YAML when the file name ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dict(data), sort_keys=False)
        else:
            text = json.dumps(data, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactEntry:
        """A matplotlib figure, in the format its file name says (png, svg, pdf…)."""
        import io

        if not hasattr(figure, "savefig"):
            raise InvalidInput(
                f"cannot log {type(figure).__name__} as a figure", hint="pass a matplotlib Figure"
            )
        suffix = Path(artifact_file).suffix.lstrip(".") or "png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix)
        return self.log_bytes(run_id, buffer.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        return self.store.list_artifacts(run_id, paths.normalise(path, allow_empty=True))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact, verified against its digest."""
        entry = self.store.get_artifact(run_id, paths.normalise(path))
        assert entry.digest is not None
        return self.artifacts.get_bytes(entry.digest)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | Path | None = None
    ) -> Path:
        """Copy a file or folder of the run into ``dst_path`` (a new temp folder when None);
        returns the local path of what was asked for."""
        import tempfile

        clean = paths.normalise(path, allow_empty=True)
        files = self.store.walk_artifacts(run_id, clean)
        if not files:
            raise NotFound(f"artifact {clean or '/'!r} not found in run {run_id}")
        root = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="triptych-"))
        # Every destination is checked (symlinks resolved) before the first byte is written.
        targets = [(entry, paths.inside(root, entry.path)) for entry in files]
        for entry, target in targets:
            assert entry.digest is not None
            self.artifacts.download(entry.digest, target)
        return root / clean if clean else root

    # -- the triptych -----------------------------------------------------------------------
    def log_input(self, run_id: str, data: Any, name: str | None = None) -> DataInput:
        """Record a data input — a registered dataset version (``"datasets:/NAME@3"``), a
        DataFrame, an array, a file or a folder — and refresh the run's fingerprint."""
        if isinstance(data, str) and data.startswith("datasets:/"):
            from triptych.data import registry

            item = registry.describe(data, client=self)
        else:
            item = fp.describe_input(data, name)
        self.store.log_inputs(run_id, [item])
        run = self.store.get_run(run_id)
        code_digest = run.fingerprint.code.digest if run.fingerprint else ""
        env_digest = run.fingerprint.env_digest if run.fingerprint else ""
        data_digest, fingerprint = fp.combine(
            code_digest, env_digest, [i.digest for i in run.inputs]
        )
        self.store.update_run(run_id, data_digest=data_digest, fingerprint=fingerprint)
        return item

    def get_environment(self, digest: str) -> Environment:
        return self.store.get_environment(digest)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
