"""What the metadata store returns: small immutable records, shared by every backend."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RunStatus(str, enum.Enum):
    """Lifecycle of a run; only RUNNING runs heartbeat."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class Lifecycle(str, enum.Enum):
    """Soft deletion: deleted things can be restored until garbage-collected."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle: Lifecycle
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int = 0
    timestamp: int = 0


@dataclass(frozen=True)
class CodeState:
    """The code leg of the triptych: where the run's code came from."""

    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    entry_point: str | None = None
    diff_digest: str | None = None  # sha256 of the uncommitted diff; None when clean or no git
    digest: str = ""  # digest of all of the above: the code part of the fingerprint


@dataclass(frozen=True)
class Environment:
    """The environment leg: stored once per distinct digest."""

    digest: str
    python: str
    platform: str
    packages: Mapping[str, str]


@dataclass(frozen=True)
class DataInput:
    """The data leg: one input of a run, identified by its content digest."""

    name: str
    digest: str
    rows: int | None = None
    schema: Mapping[str, str] | None = None
    source: str | None = None


@dataclass(frozen=True)
class Fingerprint:
    """The three digests and the digest of them together."""

    code: CodeState
    env_digest: str
    data_digest: str
    digest: str


@dataclass(frozen=True)
class ArtifactEntry:
    """A file (with digest) or a folder (``is_dir``) in a run's artifact tree."""

    path: str
    digest: str | None = None
    size: int | None = None
    is_dir: bool = False


@dataclass(frozen=True)
class RunSpec:
    """What ``create_run`` needs; everything optional has a sensible default."""

    experiment_id: str
    name: str | None = None
    parent_run_id: str | None = None
    user: str | None = None
    start_time: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    code: CodeState | None = None
    env_digest: str | None = None
    fingerprint: str | None = None
    heartbeat_timeout: float = 60.0
    run_id: str | None = None  # imports keep their ids; otherwise the store assigns one
    artifacts: tuple[ArtifactEntry, ...] = ()  # e.g. the code diff, recorded with the run


@dataclass
class Run:
    """A run with what was logged to it, as read from the store.

    A plain (not frozen) dataclass: search builds thousands of these per second, and frozen
    dataclasses cost five times more to construct. Treat it as a snapshot; changing it
    changes nothing in the store."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    lifecycle: Lifecycle
    start_time: int
    end_time: int | None
    heartbeat_time: int | None
    user: str | None
    parent_run_id: str | None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[DataInput, ...] = ()
    fingerprint: Fingerprint | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by ``--json`` and the server."""
        from dataclasses import asdict

        data = asdict(self)
        data["status"] = self.status.value
        data["lifecycle"] = self.lifecycle.value
        return data


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the token for the next (``None`` at the end)."""

    items: list[T]
    next_page_token: str | None = None


@dataclass(frozen=True)
class DatasetVersionSpec:
    """What ``create_dataset_version`` records; the bytes are already in the artifact store."""

    name: str
    digest: str  # of the table's content (format- and batching-independent)
    blob_digest: str  # of the stored Parquet file
    rows: int
    size: int
    schema: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] | None = None
    source: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    creator_run_id: str | None = None


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset (its tags and description may change)."""

    name: str
    version: int
    digest: str
    blob_digest: str
    rows: int
    size: int
    schema: Mapping[str, Any] | None
    profile: Mapping[str, Any] | None
    source: str | None
    description: str | None
    tags: Mapping[str, str]
    creator_run_id: str | None
    creation_time: int

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}@{self.version}"


@dataclass(frozen=True)
class Dataset:
    """A named series of versions and the schema new data is checked against."""

    name: str
    description: str | None
    schema: Mapping[str, Any] | None
    latest_version: int | None
    versions: int
    creation_time: int
    last_update_time: int


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: where its files are and who registered it."""

    name: str
    version: int
    source: str  # runs:/<run_id>/<path>
    run_id: str | None
    description: str | None
    tags: Mapping[str, str]
    user: str | None
    creation_time: int
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its description and tags, its versions' count, the latest, and the
    aliases pointing into it. A model may have no versions (created empty, or all deleted)."""

    name: str
    description: str | None
    latest_version: int | None
    versions: int
    aliases: Mapping[str, int]
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEvent:
    """One entry of the audit trail: who did what to which version, when and why."""

    time: int
    name: str
    action: str  # create, register, alias, unalias, update, untag, rename, delete, gate, …
    version: int | None
    alias: str | None
    previous_version: int | None
    user: str | None
    reason: str | None
    details: Mapping[str, Any] | None


@dataclass(frozen=True)
class AliasRequest:
    """A request to move an alias that needs another person's approval."""

    request_id: int
    name: str
    alias: str
    version: int
    requester: str | None
    reason: str | None
    status: str  # pending, approved, rejected
    decided_by: str | None
    decision_reason: str | None
    creation_time: int
    decision_time: int | None


@dataclass(frozen=True)
class ScheduleSpec:
    """What ``create_schedule`` records: which pipeline runs, where, and on what."""

    name: str
    pipeline: str  # absolute path of the pipeline file, or ``path:function``
    workdir: str  # the folder the pipeline runs in
    kind: str  # cron, dataset or alert
    spec: str  # the cron expression, the dataset name, or the alert name (``*``: any)
    params: Mapping[str, str] = field(default_factory=dict)
    executor: str = "local"
    created_by: str | None = None


@dataclass(frozen=True)
class Firing:
    """One occurrence of a schedule that a scheduler claimed and launched."""

    schedule: str  # the schedule's name
    occurrence: str  # ISO UTC time (cron), ``dataset:NAME@3`` or ``alert:<event id>``
    fired_at: int
    fired_by: str | None  # host:pid of the scheduler
    status: str  # RUNNING until the launch ends, then FINISHED or FAILED
    run_id: str | None = None
    error: str | None = None
    finished_at: int | None = None


@dataclass(frozen=True)
class Schedule:
    """A pipeline that runs by itself: on a cron expression, a new dataset version or an alert.

    ``active_since`` is when it was created or last resumed: nothing before it fires."""

    schedule_id: int
    name: str
    pipeline: str
    workdir: str
    kind: str
    spec: str
    params: Mapping[str, str]
    executor: str
    enabled: bool
    created_at: int
    created_by: str | None
    active_since: int
    last_firing: Firing | None = None


@dataclass(frozen=True)
class TriggerEvent:
    """Something that happened and may fire schedules (today: a monitoring alert)."""

    event_id: int
    kind: str  # alert
    name: str
    payload: Mapping[str, Any]
    time: int


@dataclass(frozen=True)
class Thresholds:
    """When a canary is rolled back automatically: its error rate above ``max_error_rate``
    (and above the primary's), or its p99 latency above ``max_p99_ms``, once it has served
    ``min_requests``. ``None`` switches a check off."""

    max_error_rate: float | None = 0.05
    max_p99_ms: float | None = None
    min_requests: int = 50


@dataclass(frozen=True)
class DeploymentSpec:
    """What a deployment serves: model addresses as given (``models:/NAME@alias`` follows the
    alias), the canary's share of requests in percent, and the rollback thresholds."""

    primary: str
    canary: str | None = None
    canary_weight: int = 0
    shadow: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class Deployment:
    """A named deployment at its current ``revision`` (1 at creation, +1 per change)."""

    name: str
    primary: str
    canary: str | None
    canary_weight: int
    shadow: str | None
    thresholds: Thresholds
    revision: int
    created_at: int
    updated_at: int
    created_by: str | None

    @property
    def uri(self) -> str:
        return f"deployments:/{self.name}"

    @property
    def spec(self) -> DeploymentSpec:
        return DeploymentSpec(
            self.primary, self.canary, self.canary_weight, self.shadow, self.thresholds
        )


@dataclass(frozen=True)
class DeploymentEvent:
    """One entry of a deployment's audit trail: the change that made ``revision``.

    ``before`` is None for a creation, ``after`` None for a deletion. ``details`` holds what
    else the change did (e.g. the alias a promotion moved), so a rollback can undo it."""

    deployment: str
    revision: int
    action: str  # create, canary, shadow, thresholds, promote, rollback, delete
    actor: str | None
    time: int
    before: DeploymentSpec | None
    after: DeploymentSpec | None
    reason: str | None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MonitorThresholds:
    """When a monitor raises an alert; None switches a check off.

    Drift: population stability index, two-sample KS statistic, normalised Wasserstein
    distance (per feature) and the share of features that drifted. Performance: the largest
    relative decay of the live score against the model's offline score (0.1 = 10% worse)."""

    psi: float | None = 0.2
    ks: float | None = 0.1
    wasserstein: float | None = 0.1
    drift_share: float | None = 0.5
    max_decay: float | None = 0.1


LOOP_TRIGGERS = ("drift", "performance", "schedule")


@dataclass(frozen=True)
class LoopPolicy:
    """What the closed loop does for a deployment when production says the model is stale.

    On a trigger (dataset drift, performance decay beyond ``max_decay``, or the ``schedule``
    cron) it runs the training ``pipeline`` with ``params``; with ``data_param`` set, the
    reference data plus the labelled live rows become a new dataset version handed to the
    pipeline through that parameter. The pipeline's gate decides; after an alias move the loop
    watches ``min_labels`` labelled live rows and rolls back when the new model scores worse
    than the previous one on those same rows by more than ``tolerance`` (relative)."""

    pipeline: str  # a pipeline file (``path.py`` or ``path.py:function``)
    triggers: tuple[str, ...] = ("drift", "performance")
    schedule: str | None = None  # cron (UTC), with the "schedule" trigger
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)  # hashable policy
    data_param: str | None = "ingest.source"
    target: str = "target"  # the label column of the reference data
    min_labels: int = 50
    tolerance: float = 0.05
    retrain_cooldown_s: int = 3600


@dataclass(frozen=True)
class MonitorSpec:
    """What a monitor watches: the reference data, the window, thresholds, alert targets,
    and (optionally) the closed-loop policy that acts on what it finds."""

    reference: str  # datasets:/NAME@VERSION
    window_s: int = 3600
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    webhooks: tuple[str, ...] = ()
    cooldown_s: int = 3600
    policy: LoopPolicy | None = None


@dataclass(frozen=True)
class Monitor:
    """The monitor of one deployment (named like it)."""

    name: str
    reference: str
    window_s: int
    thresholds: MonitorThresholds
    webhooks: tuple[str, ...]
    cooldown_s: int
    created_at: int
    updated_at: int
    created_by: str | None
    policy: LoopPolicy | None = None

    @property
    def spec(self) -> MonitorSpec:
        return MonitorSpec(
            self.reference,
            self.window_s,
            self.thresholds,
            self.webhooks,
            self.cooldown_s,
            self.policy,
        )


ALERT_STATUSES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True)
class Alert:
    """One alert: a breach of ``monitor``'s thresholds, identified by ``(kind, key)`` (e.g.
    ``("drift", "age")``). ``count`` says how many times it was seen while active."""

    id: int
    monitor: str
    kind: str
    key: str
    severity: str  # info, warning, critical
    message: str
    payload: Mapping[str, Any] | None
    status: str  # open, acknowledged, resolved
    count: int
    first_seen: int
    last_seen: int
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None


@dataclass(frozen=True)
class RaisedAlert:
    """What :meth:`raise_alert` did: ``outcome`` is ``raised`` (a new alert, to deliver),
    ``deduplicated`` (an active alert counted it) or ``cooled`` (a recent one did)."""

    alert: Alert
    outcome: str

    @property
    def is_new(self) -> bool:
        return self.outcome == "raised"
