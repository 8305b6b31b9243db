"""The metadata store contract.

Every backend (SQLAlchemy for SQLite/PostgreSQL today, the HTTP client of the team server
later) implements :class:`MetadataStore` and passes the shared suite in
``triptych.testing.store_contract``. Unless a method says otherwise:

* it is safe to call from many threads and many processes at once;
* a missing experiment or run raises :class:`~triptych.errors.NotFound`;
* bad names or values raise :class:`~triptych.errors.InvalidInput` and write nothing;
* a write is atomic: it happens entirely or not at all;
* transient backend trouble (a locked SQLite file, a PostgreSQL deadlock) is retried with
  backoff inside the call; only persistent failure surfaces, as
  :class:`~triptych.errors.StoreUnavailable`.

Times are integers in milliseconds since the epoch.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from triptych.errors import AlreadyExists, InvalidInput
from triptych.store.deployments import DeploymentStore
from triptych.store.entities import (
    ArtifactEntry,
    DataInput,
    Dataset,
    DatasetVersion,
    DatasetVersionSpec,
    Environment,
    Experiment,
    Firing,
    Metric,
    Page,
    Run,
    RunSpec,
    RunStatus,
    Schedule,
    ScheduleSpec,
    TriggerEvent,
)
from triptych.store.monitoring import MonitoringStore
from triptych.store.registry import ModelRegistryStore

MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_RESULTS = 50_000
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
DEFAULT_EXPERIMENT = "Default"


def now_ms() -> int:
    return int(time.time() * 1000)


def validate_key(kind: str, key: object) -> str:
    """Keys of params, metrics and tags: letters, digits and ``_-. /:``, at most 250 chars."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"invalid {kind} key {key!r}: must be 1-{MAX_KEY_LENGTH} characters")
    if not _KEY_RE.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(
            f"invalid {kind} key {key!r}",
            hint="use letters, digits, '_', '-', '.', ' ', ':' and '/' (no '..' segments)",
        )
    return key


def validate_value(kind: str, key: str, value: object, limit: int) -> str:
    """Param and tag values are stored as strings of bounded length."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r} is {len(text)} characters; the limit is {limit}")
    return text


def validate_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    """Checked tag keys and values (as strings); raises InvalidInput before anything is written."""
    return {
        validate_key("tag", k): validate_value("tag", k, v, MAX_TAG_LENGTH)
        for k, v in (tags or {}).items()
    }


def validate_params(params: Mapping[str, object] | None) -> dict[str, str]:
    """Checked param keys and values (as strings)."""
    return {
        validate_key("param", k): validate_value("param", k, v, MAX_PARAM_LENGTH)
        for k, v in (params or {}).items()
    }


def validate_metric(metric: Metric) -> Metric:
    """A metric's key must be valid, its value a real number, its step an integer."""
    validate_key("metric", metric.key)
    value = metric.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, Decimals…
        except (TypeError, ValueError):
            raise InvalidInput(
                f"metric {metric.key!r} must be a number, got {type(metric.value).__name__}"
            ) from None
    step = metric.step
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {metric.key!r} step must be an integer") from None
    return Metric(metric.key, float(value), step, int(metric.timestamp or now_ms()))


_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def validate_dataset_name(name: object, kind: str = "dataset") -> str:
    """Dataset names appear in URIs (``datasets:/NAME@3``): letters, digits, ``_ . -``.
    Model names (``models:/NAME@champion``) follow the same rule (``kind="model"``)."""
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"invalid {kind} name {name!r}",
            hint="use letters, digits, '_', '.' and '-' (at most 200, starting alphanumeric)",
        )
    return name


def as_int(kind: str, value: object) -> int:
    """``value`` as an integer id or version number; InvalidInput for anything else (a path
    segment such as ``../x`` arrives here as text from the server)."""
    if isinstance(value, bool):
        raise InvalidInput(f"invalid {kind} {value!r}: not a whole number")
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid {kind} {value!r}: not a whole number") from None


_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


def validate_alias(alias: object) -> str:
    """Aliases (champion, challenger, prod-eu…): a letter, then letters, digits, ``_ -``."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias == "latest":
        raise InvalidInput(
            f"invalid alias {alias!r}",
            hint="start with a letter; letters, digits, '_' and '-'; 'latest' is reserved",
        )
    return alias


def validate_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_LENGTH:
        raise InvalidInput(f"invalid {kind} name {name!r}: must be 1-{MAX_KEY_LENGTH} characters")
    return name


SCHEDULE_KINDS = ("cron", "dataset", "alert")
FIRING_STATUSES = ("RUNNING", "FINISHED", "FAILED")


def validate_schedule_spec(spec: ScheduleSpec) -> dict[str, str]:
    """Check a schedule's shape and return its params as strings. The meaning of ``spec``
    (a cron expression that parses, a pipeline file that exists) is the service's to check."""
    name = spec.name
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(  # schedule names appear in run tags: the URI-safe rule
            f"invalid schedule name {name!r}",
            hint="use letters, digits, '_', '.' and '-' (at most 200, starting alphanumeric)",
        )
    if spec.kind not in SCHEDULE_KINDS:
        raise InvalidInput(
            f"invalid schedule kind {spec.kind!r}", hint=f"use one of {', '.join(SCHEDULE_KINDS)}"
        )
    if spec.kind == "dataset":
        validate_dataset_name(spec.spec)
    elif spec.kind == "alert":
        if spec.spec != "*":
            validate_key("alert", spec.spec)
    elif not isinstance(spec.spec, str) or not spec.spec.strip() or len(spec.spec) > MAX_KEY_LENGTH:
        raise InvalidInput(f"invalid cron expression {spec.spec!r}")
    for label, value in (("pipeline", spec.pipeline), ("workdir", spec.workdir)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"a schedule needs a {label}")
    validate_name("executor", spec.executor)
    return validate_params(spec.params)


def is_nan(value: float) -> bool:
    return math.isnan(value)


class MetadataStore(ModelRegistryStore, DeploymentStore, MonitoringStore, ABC):
    """Experiments, runs and everything logged to them. See the module docstring."""

    url: str

    # -- experiments ------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """Create an experiment and return its id. Raises AlreadyExists if the name is taken
        (deleted experiments keep their name until restored or purged)."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id, deleted or not. Raises NotFound."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name, or None."""

    @abstractmethod
    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        """All experiments, oldest first."""

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename. Raises NotFound, or AlreadyExists if ``new_name`` is taken."""

    @abstractmethod
    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> None:
        """Soft-delete (``deleted=True``) or restore. Raises NotFound."""

    @abstractmethod
    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        """Merge ``tags`` into the experiment's (a key set again takes the new value).
        Raises NotFound, InvalidInput."""

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag. Raises NotFound for a missing experiment or a tag it does not have."""

    # -- runs -------------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, spec: RunSpec) -> Run:
        """Create a RUNNING run with its tags, params, fingerprint and initial artifacts in one
        transaction and return it. Raises NotFound for a missing experiment, parent run or
        environment, and Conflict if the experiment is deleted or ``spec.run_id`` exists."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with params, latest metrics, tags, inputs and fingerprint. Raises NotFound."""

    @abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        data_digest: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """Change what is given; a terminal status sets ``end_time`` (now when omitted).
        Raises NotFound."""

    @abstractmethod
    def heartbeat(self, run_ids: Sequence[str], at: int | None = None) -> None:
        """Record that these RUNNING runs are alive. Unknown or finished runs are ignored."""

    @abstractmethod
    def fail_stale_runs(self, at: int | None = None) -> list[str]:
        """Mark FAILED every RUNNING run whose last heartbeat is older than its timeout, and
        return their ids. Safe to call from many processes: each run is failed once."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        """Soft-delete or restore a run. Raises NotFound."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Record metrics, params and tags in one transaction. Re-logging a param with the
        same value is a no-op; with a different value it raises Conflict and writes nothing.
        Raises NotFound for a missing run."""

    @abstractmethod
    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run. Raises NotFound for a missing run or a tag it does not
        have."""

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write a last batch and set the final ``status``: what ending a run costs.

        Written once here on top of the contract; backends override it to do both in one
        round trip (the SQL store: one transaction). A batch that fails (e.g. a changed param)
        raises, and the status is not set."""
        if metrics or params or tags:
            self.log_batch(run_id, metrics, params, tags)
        self.update_run(run_id, status=status, end_time=end_time)

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of ``key``, ordered by step then timestamp. Raises NotFound for
        a missing run; an unknown key gives an empty list."""

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """Runs of these experiments matching ``filter_string`` (see
        ``triptych.store.search``), ordered by ``order_by`` (default: newest first), one page
        of at most ``max_results``. Raises InvalidInput for a bad filter, order or token."""

    # -- the triptych -----------------------------------------------------------------------
    @abstractmethod
    def put_environment(self, environment: Environment) -> None:
        """Store an environment once per digest; storing it again is a no-op."""

    @abstractmethod
    def get_environment(self, digest: str) -> Environment:
        """The environment with this digest. Raises NotFound."""

    @abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[DataInput]) -> None:
        """Record data inputs of a run; the same (name, digest) twice is kept once."""

    # -- artifacts (the tree; bytes live in the artifact store) -------------------------------
    @abstractmethod
    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        """Point run paths at stored blobs; a path logged again points at the new blob.
        Paths must already be normalised by ``triptych.artifacts.paths``."""

    @abstractmethod
    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """Direct children of folder ``path`` (files and sub-folders), sorted by path."""

    @abstractmethod
    def get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        """The file at ``path``. Raises NotFound."""

    @abstractmethod
    def walk_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """Every file at or under ``path``, sorted."""

    # -- datasets ---------------------------------------------------------------------------
    @abstractmethod
    def create_dataset_version(self, spec: DatasetVersionSpec) -> tuple[DatasetVersion, bool]:
        """Record a version of dataset ``spec.name`` (created on first use) and return it with
        ``True``; when a version with the same content digest exists, return that one with
        ``False`` and write nothing. Version numbers are 1, 2, 3… per dataset, assigned by
        the database without gaps or duplicates under concurrent writers. The first version's
        schema becomes the dataset's expected schema."""

    @abstractmethod
    def get_dataset(self, name: str) -> Dataset:
        """The dataset. Raises NotFound."""

    @abstractmethod
    def list_datasets(self) -> list[Dataset]:
        """All datasets, by name."""

    @abstractmethod
    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version ``version`` of ``name``, or the latest when None. Raises NotFound."""

    @abstractmethod
    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first. Raises NotFound for an unknown dataset."""

    @abstractmethod
    def update_dataset_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> None:
        """Set tags (merged), description or profile of a version. Raises NotFound."""

    @abstractmethod
    def set_dataset_schema(self, name: str, schema: Mapping[str, Any]) -> None:
        """Replace the schema new data of ``name`` is validated against. Raises NotFound."""

    @abstractmethod
    def delete_dataset_version(self, name: str, version: int) -> None:
        """Remove the version's record (not its bytes: callers decide). Raises NotFound."""

    @abstractmethod
    def versions_with_digest(self, digest: str) -> list[tuple[str, int]]:
        """``(name, version)`` of every dataset version with this content digest."""

    @abstractmethod
    def runs_with_input(self, digest: str) -> list[str]:
        """Ids of the runs that logged an input with this content digest, oldest first."""

    @abstractmethod
    def blob_in_use(self, blob_digest: str) -> bool:
        """Whether any dataset version or run artifact still points at these bytes."""

    # -- schedules and triggers --------------------------------------------------------------
    @abstractmethod
    def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        """Record an enabled schedule and return it. Raises AlreadyExists if the name is taken
        and InvalidInput for a bad shape (see :func:`validate_schedule_spec`)."""

    @abstractmethod
    def get_schedule(self, name: str) -> Schedule:
        """The schedule with its latest firing. Raises NotFound."""

    @abstractmethod
    def list_schedules(self, enabled_only: bool = False) -> list[Schedule]:
        """Every schedule (or only the enabled ones) with its latest firing, by name."""

    @abstractmethod
    def delete_schedule(self, name: str) -> None:
        """Remove a schedule and its firings; a new schedule of that name starts afresh.
        Raises NotFound."""

    @abstractmethod
    def set_schedule_enabled(self, name: str, enabled: bool, *, at: int | None = None) -> None:
        """Pause or resume. Resuming a paused schedule moves ``active_since`` to ``at`` (now
        when omitted): what happened while it was paused never fires. Raises NotFound."""

    @abstractmethod
    def claim_firing(
        self,
        schedule_id: int,
        occurrence: str,
        *,
        at: int | None = None,
        fired_by: str | None = None,
    ) -> bool:
        """Claim one occurrence of an enabled schedule for firing, recorded as RUNNING.

        Returns True for exactly one caller per ``(schedule_id, occurrence)`` across threads,
        processes and machines sharing the store, and False for every other caller (never an
        exception for losing the race), and for a paused schedule. Raises NotFound for an
        unknown schedule."""

    @abstractmethod
    def record_firing_result(
        self,
        schedule_id: int,
        occurrence: str,
        *,
        status: str,
        run_id: str | None = None,
        error: str | None = None,
        at: int | None = None,
    ) -> None:
        """Set the outcome of a claimed firing (``FINISHED`` or ``FAILED``, with the run it
        launched or the error). Raises NotFound when it was never claimed."""

    @abstractmethod
    def list_firings(self, name: str, limit: int = 20) -> list[Firing]:
        """The latest ``limit`` firings of a schedule, newest first. Raises NotFound."""

    @abstractmethod
    def add_trigger_event(
        self, kind: str, name: str, payload: Mapping[str, Any] | None = None
    ) -> TriggerEvent:
        """Record an event schedules may fire on (kind ``alert``) and return it with its id.
        ``payload`` must be JSON-serialisable. Raises InvalidInput."""

    @abstractmethod
    def list_trigger_events(
        self,
        kind: str,
        *,
        name: str | None = None,
        since: int | None = None,
        limit: int = 100,
    ) -> list[TriggerEvent]:
        """Events of ``kind`` (only those called ``name`` if given, only at or after time
        ``since`` if given), newest first, at most ``limit``."""

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:  # an optional hook
        """Release connections. The store must not be used afterwards."""

    # -- conveniences written once on top of the contract --------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created if needed; safe under races."""
        existing = self.get_experiment_by_name(name)
        if existing is not None:
            return existing
        try:
            return self.get_experiment(self.create_experiment(name))
        except AlreadyExists:
            found = self.get_experiment_by_name(name)
            assert found is not None
            return found

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0) -> None:
        """One metric, written now (the fluent API batches instead)."""
        self.log_batch(run_id, metrics=[Metric(key, value, step, now_ms())])

    def iter_runs(
        self, experiment_ids: Sequence[str], filter_string: str = "", page_size: int = 1000
    ) -> Iterable[Run]:
        """Every matching run, page by page."""
        token: str | None = None
        while True:
            page = self.search_runs(
                experiment_ids, filter_string, max_results=page_size, page_token=token
            )
            yield from page.items
            token = page.next_page_token
            if token is None:
                return
