"""Tables of the SQL metadata store (SQLAlchemy Core; the migrations create the same)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

KEY = 250

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("lifecycle", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("python", String(64), nullable=False),
    Column("platform", String(KEY), nullable=False),
    Column("packages", Text, nullable=False),  # JSON {name: version}
    Column("creation_time", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(32), nullable=False, unique=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(KEY), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("user", String(KEY)),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("heartbeat_time", BigInteger),
    Column("heartbeat_timeout", Float, nullable=False),
    Column("parent_id", Integer, ForeignKey("runs.id")),
    Column("code_commit", String(64)),
    Column("code_branch", String(KEY)),
    Column("code_remote", Text),
    Column("entry_point", Text),
    Column("code_diff_digest", String(64)),
    Column("code_digest", String(64)),
    Column("env_digest", String(64), ForeignKey("environments.digest")),
    Column("data_digest", String(64)),
    Column("fingerprint", String(64)),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_parent", "parent_id"),
    Index("ix_runs_fingerprint", "fingerprint"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(KEY), nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(KEY), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("rows", BigInteger),
    Column("schema", Text),  # JSON {column: dtype}
    Column("source", Text),
    Index("ix_run_inputs_digest", "digest"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("description", Text),
    Column("schema", Text),  # JSON: the expected schema new versions are validated against
    Column("last_version", Integer, nullable=False),  # counter: numbers are never reused
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # of the table's content
    Column("blob_digest", String(64), nullable=False),  # of the stored Parquet file
    Column("rows", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("schema", Text),  # JSON
    Column("profile", Text),  # JSON
    Column("source", Text),
    Column("description", Text),
    Column("creator_run_id", String(32)),
    Column("creation_time", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
    UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
    Index("ix_dataset_versions_digest", "digest"),
    Index("ix_dataset_versions_blob", "blob_digest"),
)

dataset_version_tags = Table(
    "dataset_version_tags",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("description", Text),
    Column("last_version", Integer, nullable=False),  # counter: numbers are never reused
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

# A model's own tags (migration 0010); its versions' tags are in model_version_tags.
registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),  # runs:/<run_id>/<path>
    Column("run_id", String(32)),
    Column("description", Text),
    Column("user", String(KEY)),
    Column("creation_time", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column(
        "version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

# The audit trail: every registration, alias move, deletion and gate decision, append-only.
model_events = Table(
    "model_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("model_name", String(KEY), nullable=False),
    Column("action", String(32), nullable=False),
    Column("version", Integer),
    Column("alias", String(64)),
    Column("previous_version", Integer),
    Column("user", String(KEY)),
    Column("reason", Text),
    Column("details", Text),  # JSON
    Column("time", BigInteger, nullable=False),
    Index("ix_model_events_model_time", "model_name", "time"),
)

alias_policies = Table(
    "alias_policies",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(64), primary_key=True),
    Column("require_approval", Boolean, nullable=False),
)

alias_requests = Table(
    "alias_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    ),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("requester", String(KEY)),
    Column("reason", Text),
    Column("status", String(16), nullable=False),  # pending, approved, rejected
    Column("decided_by", String(KEY)),
    Column("decision_reason", Text),
    Column("creation_time", BigInteger, nullable=False),
    Column("decision_time", BigInteger),
    Index("ix_alias_requests_model_status", "model_id", "status"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("pipeline", Text, nullable=False),
    Column("workdir", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # cron, dataset, alert
    Column("spec", String(KEY), nullable=False),
    Column("params", Text, nullable=False),  # JSON {key: value}
    Column("executor", String(KEY), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY)),
    Column("active_since", BigInteger, nullable=False),  # creation or last resume
)

# One row per occurrence a scheduler claimed: the unique constraint is what makes two
# schedulers over one store fire an occurrence once.
schedule_firings = Table(
    "schedule_firings",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("schedule_id", Integer, ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("occurrence", String(KEY), nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Column("fired_by", String(KEY)),
    Column("status", String(16), nullable=False),  # RUNNING, FINISHED, FAILED
    Column("run_id", String(32)),
    Column("error", Text),
    Column("finished_at", BigInteger),
    UniqueConstraint("schedule_id", "occurrence", name="uq_schedule_firings_occurrence"),
)

trigger_events = Table(
    "trigger_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(16), nullable=False),
    Column("name", String(KEY), nullable=False),
    Column("payload", Text),  # JSON
    Column("time", BigInteger, nullable=False),
    Index("ix_trigger_events_kind_time", "kind", "time"),
    Index("ix_trigger_events_kind_name_time", "kind", "name", "time"),
)

# Deployments: the current spec of each (columns are *_model: "primary" is an SQL keyword).
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("primary_model", Text, nullable=False),
    Column("canary_model", Text),
    Column("canary_weight", Integer, nullable=False),
    Column("shadow_model", Text),
    Column("thresholds", Text, nullable=False),  # JSON
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(KEY)),
)

# The audit trail, append-only and keyed by name so it outlives the deployment. One event per
# revision: the unique constraint is the last guard against two writers taking the same one.
deployment_events = Table(
    "deployment_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("deployment", String(KEY), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(KEY)),
    Column("time", BigInteger, nullable=False),
    Column("before", Text),  # JSON spec; null for a creation
    Column("after", Text),  # JSON spec; null for a deletion
    Column("reason", Text),
    Column("details", Text),  # JSON
    UniqueConstraint("deployment", "revision", name="uq_deployment_events_revision"),
)

# Monitors: one per deployment, named like it.
monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("reference", Text, nullable=False),
    Column("window_s", Integer, nullable=False),
    Column("thresholds", Text, nullable=False),  # JSON
    Column("webhooks", Text, nullable=False),  # JSON list
    Column("cooldown_s", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(KEY)),
    Column("policy", Text),  # JSON LoopPolicy, NULL without a closed loop (migration 0008)
)

# Alerts. ``active_key`` is "monitor\nkind\nkey" while the alert is open or acknowledged and
# NULL once resolved: its unique constraint is what keeps one active alert per key even when
# processes race (NULLs never collide on SQLite or PostgreSQL).
alerts = Table(
    "alerts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("monitor", String(KEY), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("key", String(KEY), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", Text),  # JSON
    Column("status", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("acknowledged_by", String(KEY)),
    Column("acknowledged_at", BigInteger),
    Column("resolved_by", String(KEY)),
    Column("resolved_at", BigInteger),
    Column("active_key", String(600), unique=True),
    Index("ix_alerts_monitor_kind_key_first", "monitor", "kind", "key", "first_seen"),
    Index("ix_alerts_last_seen", "last_seen"),
)

# Users, their roles per project ("*" or an experiment name) and their API tokens (migration
# 0009). A token is kept as its public id and the sha256 of the whole token, never as itself.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY)),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project", String(KEY), primary_key=True),
    Column("role", String(16), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("label", String(KEY)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("created_by", String(KEY)),
    Index("ix_api_tokens_user", "user_id"),
)
