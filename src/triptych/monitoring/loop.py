"""The closed loop: production says the model is stale → retrain → gate → promote → watch →
roll back when the new champion does worse.

One :func:`tick` decides one thing for a deployment with a loop policy
(:mod:`triptych.monitoring.policy`), from what is stored, so ticks can run from a cron job, a
long-running ``triptych monitor loop`` or a test, and a crashed loop resumes where it was:

1. **Watch.** When the alias the deployment follows moved (by the loop's gate or by hand)
   and nobody has judged the move yet, the loop waits for ``min_labels`` labelled live rows
   scored by the new version, re-scores the *same rows* with the previous version, and either
   confirms the new one or moves the alias back (``loop.rollback``). Same rows for both, so a
   drifted world cannot make either model look better than it is.
2. **Trigger.** Otherwise it runs a monitor check (:mod:`triptych.monitoring.checks`) and
   retrains when a policy trigger fires (dataset drift, performance decay, the cron schedule)
   and no retrain ran within the policy's cooldown: the reference data plus the window's
   labelled live rows become a new dataset version, the training pipeline runs with it
   (``data_param``), and the pipeline's own gate decides whether the alias moves
   (``loop.retrain``). The deployment follows the alias by itself (``triptych serve``).

Every action is an event in the model's audit trail (``triptych models history``), with the
deployment in its details. ``dry_run=True`` only says what the tick would do.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.errors import Conflict, StepFailed, TriptychError

if TYPE_CHECKING:
    import pandas

    from triptych.monitoring.checks import CheckResult
    from triptych.store.entities import LoopPolicy, ModelEvent, Monitor
    from triptych.tracking.client import Client

RETRAIN, CONFIRM, ROLLBACK = "loop.retrain", "loop.confirm", "loop.rollback"
JUDGED = (CONFIRM, ROLLBACK)
LOOP_TAG = "triptych.loop"


@dataclass
class Decision:
    """What one tick did (or, in a dry run, would do).

    ``action``: ``none`` (nothing to do), ``cooldown`` (a trigger fired within the retrain
    cooldown), ``retrain`` (pipeline ran: see ``details['gate']``), ``watch`` (waiting for
    labels on a new version), ``confirm`` or ``rollback``."""

    deployment: str
    action: str
    reason: str
    dry_run: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    check: CheckResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "action": self.action,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "details": self.details,
            "check": self.check.to_dict() if self.check is not None else None,
        }


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def _now() -> int:
    return int(time.time() * 1000)


# -- the audit trail ----------------------------------------------------------------------------
def events(deployment: str, model: str, *, client: Client) -> list[ModelEvent]:
    """The loop's events for ``deployment`` in ``model``'s audit trail, oldest first."""
    return [
        e
        for e in client.store.model_history(model)
        if e.action.startswith("loop.") and (e.details or {}).get("deployment") == deployment
    ]


def _record(
    c: Client,
    model: str,
    action: str,
    deployment: str,
    reason: str,
    version: int | None,
    details: dict[str, Any],
) -> None:
    from triptych.models import registry

    c.store.record_model_event(
        model,
        action,
        version=version,
        user=registry._user(),
        reason=reason[:8000],
        details={"deployment": deployment, **details},
    )


def unjudged_move(deployment: str, model: str, alias: str, *, client: Client) -> ModelEvent | None:
    """The latest move of ``model@alias`` that replaced another version and that the loop has
    not judged since (its own rollbacks are judgements, not moves to watch)."""
    history = client.store.model_history(model)
    move_at = None
    for i, e in enumerate(history):
        if e.action == "alias" and e.alias == alias:
            move_at = i
    if move_at is None:
        return None
    move = history[move_at]
    if move.previous_version is None or move.previous_version == move.version:
        return None
    for e in history[move_at + 1 :]:
        if e.action in JUDGED and (e.details or {}).get("deployment") == deployment:
            return None
    # the loop's rollback is recorded right after its alias move: that move is judged already
    return move


# -- labelled live rows -------------------------------------------------------------------------
def labelled_rows(
    deployment: str, start_ms: int, end_ms: int, *, client: Client | None = None
) -> pandas.DataFrame:
    """The rows scored in ``[start_ms, end_ms)`` that have a label: the input features,
    ``prediction``, ``label``, ``model_name``, ``model_version``, ``time_ms``. A request that
    scored n rows pairs with a list of n labels; other shapes are left out."""
    import pandas as pd

    from triptych.monitoring import checks, labels

    c = _client(client)
    rows = checks.current_frame(deployment, start_ms, end_ms, client=c)
    if rows.empty:
        return rows.assign(label=pd.Series(dtype=object))
    stored = labels.read(deployment, client=c)
    by_id = dict(zip(stored["request_id"], stored["label"], strict=True))
    sizes = rows.groupby("request_id")["request_id"].transform("size")
    position = rows.groupby("request_id").cumcount()
    values = []
    for rid, n, i in zip(rows["request_id"], sizes, position, strict=True):
        label = by_id.get(rid)
        if isinstance(label, list):
            values.append(label[i] if len(label) == n else None)
        else:
            values.append(label if n == 1 else None)
    rows = rows.assign(label=values)
    return rows[rows["label"].notna()].reset_index(drop=True)


def _score(task: str, truth: Any, predicted: Any) -> float:
    from sklearn import metrics

    if task == "regression":
        return float(metrics.mean_squared_error(truth, predicted))
    return float(metrics.accuracy_score([str(t) for t in truth], [str(p) for p in predicted]))


# -- the tick -----------------------------------------------------------------------------------
def tick(
    deployment: str,
    *,
    dry_run: bool = False,
    now_ms: int | None = None,
    client: Client | None = None,
) -> Decision:
    """Decide and do one step of the loop for ``deployment`` (see the module docstring).

    Raises NotFound (no deployment or monitor), Conflict (the monitor has no policy),
    InvalidInput (the deployment follows no alias)."""
    from triptych.deployments import name_of
    from triptych.monitoring.policy import followed_alias

    c = _client(client)
    name = name_of(deployment)
    monitor = c.store.get_monitor(name)
    policy = monitor.policy
    if policy is None:
        raise Conflict(
            f"the monitor of {name!r} has no loop policy",
            hint=f"set one: triptych monitor policy {name} --pipeline PIPELINE.py",
        )
    model, alias = followed_alias(name, client=c)
    now = _now() if now_ms is None else int(now_ms)
    move = unjudged_move(name, model, alias, client=c)
    if move is not None:
        return _watch(name, model, alias, move, monitor, now, dry_run, c)
    return _trigger(name, model, alias, monitor, policy, now, dry_run, c)


def _watch(
    name: str,
    model: str,
    alias: str,
    move: ModelEvent,
    monitor: Monitor,
    now: int,
    dry_run: bool,
    c: Client,
) -> Decision:
    from triptych.models.model import load_model
    from triptych.monitoring.performance import PRIMARY, infer_task

    policy = monitor.policy
    assert policy is not None
    new, previous = move.version, move.previous_version
    assert new is not None and previous is not None
    rows = labelled_rows(name, move.time, now + 1, client=c)
    rows = rows[(rows["model_name"] == model) & (rows["model_version"] == new)]
    details: dict[str, Any] = {
        "at": now,
        "version": new,
        "previous": previous,
        "since": move.time,
        "labelled": len(rows),
        "min_labels": policy.min_labels,
    }
    if len(rows) < policy.min_labels:
        return Decision(
            name,
            "watch",
            f"watching {model} v{new} (replaced v{previous}): {len(rows)} of "
            f"{policy.min_labels} labelled live rows so far",
            dry_run,
            details,
        )
    task = infer_task(rows)
    metric, lower_is_better, _ = PRIMARY[task]
    old = load_model(f"models:/{model}/{previous}", client=c)
    features = old.signature.names if old.signature is not None else None
    inputs = (
        rows[features]
        if features
        else rows.drop(
            columns=[
                "prediction",
                "label",
                "request_id",
                "time_ms",
                "variant",
                "model_name",
                "model_version",
            ],
            errors="ignore",
        )
    )
    live_new = _score(task, rows["label"], rows["prediction"])
    live_old = _score(task, rows["label"], old.predict(inputs))
    change = (live_new - live_old) if lower_is_better else (live_old - live_new)
    relative = change / abs(live_old) if live_old else (math.inf if change > 0 else 0.0)
    details.update(
        metric=metric,
        new_score=live_new,
        previous_score=live_old,
        relative_change=relative,
        tolerance=policy.tolerance,
    )
    worse = relative > policy.tolerance
    verdict = (
        f"{metric} {live_new:.4g} for v{new} vs {live_old:.4g} for v{previous} on the same "
        f"{len(rows)} labelled live rows ({relative:+.1%}, tolerance {policy.tolerance:.0%})"
    )
    if not worse:
        if not dry_run:
            details["reference"] = _follow_reference(name, monitor, c)
            _record(c, model, CONFIRM, name, f"kept v{new}: {verdict}", new, details)
        return Decision(name, "confirm", f"keep v{new}: {verdict}", dry_run, details)
    reason = f"rolled back v{new} to v{previous}: {verdict}"
    if not dry_run:
        from triptych.models import registry

        now_at = c.store.get_model_version(model, alias=alias).version
        if now_at != new:  # someone moved it meanwhile: not ours to undo
            raise Conflict(
                f"{model}@{alias} moved to v{now_at} while the loop judged v{new}",
                hint="run the loop again: it watches the latest move",
            )
        registry.set_alias(
            model, alias, previous, reason=f"loop: {reason}", details={"deployment": name}, client=c
        )
        _record(c, model, ROLLBACK, name, reason, previous, details)
    return Decision(name, "rollback", reason, dry_run, details)


def _follow_reference(name: str, monitor: Monitor, c: Client) -> dict[str, str] | None:
    """A confirmed champion becomes the baseline: the monitor's reference moves to the data it
    was trained on (else drift against the old data would fire, and retrain, forever)."""
    from dataclasses import replace

    from triptych.errors import NotFound
    from triptych.monitoring.monitors import training_data

    try:
        reference = training_data(name, client=c)
    except NotFound:
        return None
    if reference == monitor.reference:
        return None
    c.store.update_monitor(name, replace(monitor.spec, reference=reference))
    return {"from": monitor.reference, "to": reference}


def _reasons(
    check: CheckResult,
    policy: LoopPolicy,
    champion: int,
    last_retrain: int | None,
    created: int,
    now: int,
) -> list[str]:
    found = []
    d = check.drift
    if "drift" in policy.triggers and d is not None and (d.drifted or d.prediction_drifted):
        cols = [n for n in d.drifted_columns if n != "prediction"]
        what = f"{len(cols)} feature(s) drifted ({', '.join(cols[:6]) or 'none'})"
        if d.prediction_drifted:
            what += " and the predictions drifted"
        found.append(f"drift: {what}")
    p = check.performance
    if "performance" in policy.triggers and p is not None and p["max_decay"] is not None:
        from triptych.monitoring.checks import MIN_LABELS

        # the served version's decay: an older version's rows in the window are history
        mine = [v for v in p["versions"] if v["model_version"] == champion]
        decays = [v["decay"] for v in mine if v["decay"] is not None]
        labelled = sum(v["n_labelled"] for v in mine)
        if decays and labelled >= MIN_LABELS and max(decays) > p["max_decay"]:
            found.append(
                f"performance: live {p['metric']} of v{champion} {max(decays):.1%} worse than "
                f"offline (limit {p['max_decay']:.0%})"
            )
    if "schedule" in policy.triggers and policy.schedule:
        from triptych.pipelines.schedules import latest_cron_time

        due = latest_cron_time(policy.schedule, now / 1000)
        since = last_retrain if last_retrain is not None else created
        if due is not None and due.timestamp() * 1000 > since:
            found.append(f"schedule: {policy.schedule} was due at {due:%Y-%m-%d %H:%M} UTC")
    return found


def _trigger(
    name: str,
    model: str,
    alias: str,
    monitor: Monitor,
    policy: LoopPolicy,
    now: int,
    dry_run: bool,
    c: Client,
) -> Decision:
    from triptych.monitoring import checks

    done = events(name, model, client=c)
    # the tick's own clock, which a caller may set (a replay, a test), else the record time
    times = [int((e.details or {}).get("at", e.time)) for e in done]
    retrains = [t for e, t in zip(done, times, strict=True) if e.action == RETRAIN]
    last = retrains[-1] if retrains else None
    # evidence from before the loop's last action describes a system that no longer exists
    start = now - monitor.window_s * 1000
    if times and start < max(times) < now:
        start = max(times)
    check = checks.run(
        name, start_ms=start, end_ms=now, alerts=not dry_run, record=not dry_run, client=c
    )
    champion = c.store.get_model_version(model, alias=alias).version
    reasons = _reasons(check, policy, champion, last, monitor.updated_at, now)
    if not reasons:
        return Decision(name, "none", "no trigger fired", dry_run, check=check)
    why = "; ".join(reasons)
    if last is not None and now - last < policy.retrain_cooldown_s * 1000:
        wait = math.ceil((policy.retrain_cooldown_s * 1000 - (now - last)) / 60_000)
        return Decision(
            name,
            "cooldown",
            f"{why} — but a retrain ran less than the cooldown ago (about {wait} min left)",
            dry_run,
            {"reasons": reasons},
            check,
        )
    if dry_run:
        return Decision(
            name,
            "retrain",
            f"would retrain: {why}",
            True,
            {"reasons": reasons, "pipeline": policy.pipeline},
            check,
        )
    details = _retrain(name, model, alias, monitor, policy, check, reasons, now, c)
    return Decision(name, "retrain", f"{why} → {details['outcome']}", False, details, check)


def _retrain(
    name: str,
    model: str,
    alias: str,
    monitor: Monitor,
    policy: LoopPolicy,
    check: CheckResult,
    reasons: list[str],
    now: int,
    c: Client,
) -> dict[str, Any]:
    from triptych.pipelines import runner

    before = c.store.get_model_version(model, alias=alias).version
    details: dict[str, Any] = {
        "reasons": reasons,
        "pipeline": policy.pipeline,
        "champion_before": before,
        "at": now,
    }
    params = dict(policy.params)
    if policy.data_param:
        version, added = feedback_dataset(name, monitor, policy, check, client=c)
        params[policy.data_param] = version
        details.update(dataset=version, feedback_rows=added)
    try:
        result = runner.run(policy.pipeline, params=params, tags={LOOP_TAG: name}, client=c)
        details.update(pipeline_run=result.run_id, status=result.status)
    except StepFailed as e:
        run = getattr(e.result, "run_id", None)
        details.update(pipeline_run=run, status="FAILED", error=str(e))
    except TriptychError as e:
        details.update(status="FAILED", error=str(e))
    after = c.store.get_model_version(model, alias=alias).version
    details["champion_after"] = after
    if details["status"] == "FAILED":
        details["outcome"] = f"the pipeline failed: {details['error']}"
    elif after != before:
        details["outcome"] = f"the gate promoted v{after} over v{before}; watching it"
    else:
        details["outcome"] = f"the gate kept v{before}"
    _record(
        c, model, RETRAIN, name, "; ".join(reasons) + f" → {details['outcome']}", after, details
    )
    return details


def feedback_dataset(
    name: str, monitor: Monitor, policy: LoopPolicy, check: CheckResult, *, client: Client
) -> tuple[str, int]:
    """A new version of ``<reference name>-live``: the reference rows plus the check window's
    labelled live rows (label as ``policy.target``). Returns (its ``datasets:/`` address, live
    rows added); the same content again is the same version.

    A dataset of its own, not a version of the reference: production rows are what drifted,
    so they must not be judged by the reference's inferred schema (its min/max) or become its
    ``@latest``; the live lineage gets its own schema and its own version history."""
    import pandas as pd

    from triptych.data import registry as datasets

    base = datasets.load(monitor.reference, client=client)
    live = labelled_rows(name, check.start_ms, check.end_ms, client=client)
    columns = [col for col in base.columns if col != policy.target]
    usable = live.dropna(subset=[col for col in columns if col in live.columns])
    added = 0
    frame = base
    if len(usable) and all(col in usable.columns for col in columns):
        rows = usable[columns].assign(**{policy.target: usable["label"]})
        rows = rows.astype({col: base[col].dtype for col in base.columns}, errors="ignore")
        frame = pd.concat([base, rows[list(base.columns)]], ignore_index=True)
        added = len(rows)
    dataset_name = live_dataset(monitor)
    version = datasets.add(
        dataset_name, frame, description=f"{name}: reference + live labels", client=client
    )
    return version.uri, added


def live_dataset(monitor: Monitor) -> str:
    """The dataset the loop adds reference + live rows to: ``<reference name>-live``."""
    return monitor.reference.split(":/", 1)[1].rsplit("@", 1)[0] + "-live"


def run_forever(
    deployment: str,
    *,
    interval_s: float = 60.0,
    max_ticks: int | None = None,
    on_decision: Any = None,
    client: Client | None = None,
) -> list[Decision]:
    """Tick every ``interval_s`` seconds (``max_ticks`` times, or until interrupted)."""
    c = _client(client)
    done: list[Decision] = []
    while max_ticks is None or len(done) < max_ticks:
        decision = tick(deployment, client=c)
        done.append(decision)
        if on_decision is not None:
            on_decision(decision)
        if max_ticks is not None and len(done) >= max_ticks:
            break
        time.sleep(interval_s)
    return done


__all__ = [
    "Decision",
    "events",
    "feedback_dataset",
    "labelled_rows",
    "run_forever",
    "tick",
    "unjudged_move",
]
