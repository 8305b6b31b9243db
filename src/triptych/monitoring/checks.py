"""Monitor checks: one window of the prediction log against the monitor's reference.

:func:`run` reads the predictions a deployment answered in ``[start, end)``, compares their
inputs and outputs with the reference dataset (:mod:`triptych.monitoring.drift`), joins the
labels that arrived (:mod:`triptych.monitoring.performance`), raises alerts for breached
thresholds (:mod:`triptych.monitoring.alerts`: deduped, cooled down, delivered) and records
the result, so that drift and performance *over time* can be read back (:func:`history`).

Results live in one *checks run* per deployment (experiment ``monitoring``, tag
``triptych.monitoring.checks``): a metric per statistic with the window's end as its step and
time (``drift.share``, ``psi.bmi`` …), and the whole result as ``checks/<end ms>.json``. The
reference's predictions (for prediction drift) are the model's own answers on the reference
rows, computed once per (model version, reference) and kept in that run too.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas

    from triptych.monitoring.alerts import Raised
    from triptych.monitoring.drift import DriftReport
    from triptych.store.entities import Monitor
    from triptych.tracking.client import Client

CHECKS_TAG = "triptych.monitoring.checks"
PREFIX = "checks"
PREDICTION = "prediction"
MIN_ROWS = 30  # fewer predicted rows than this in a window: no drift verdict (too noisy)
MIN_LABELS = 30  # fewer labelled rows: no performance verdict
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. :]")


@dataclass
class CheckResult:
    """One window's verdicts; ``alerts`` are what this check raised (new or counted)."""

    deployment: str
    start_ms: int
    end_ms: int
    reference: str
    rows: int
    model_version: int | None
    drift: DriftReport | None = None
    performance: dict[str, Any] | None = None
    alerts: list[Raised] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.drift is not None and self.drift.drifted)

    @property
    def decayed(self) -> bool:
        return bool(self.performance and self.performance.get("breached"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "reference": self.reference,
            "rows": self.rows,
            "model_version": self.model_version,
            "drifted": self.drifted,
            "decayed": self.decayed,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "performance": self.performance,
            "alerts": [
                {
                    "id": r.alert.id,
                    "kind": r.alert.kind,
                    "key": r.alert.key,
                    "severity": r.alert.severity,
                    "outcome": r.outcome,
                    "message": r.alert.message,
                }
                for r in self.alerts
            ],
            "notes": self.notes,
        }


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def checks_run(
    deployment: str, *, client: Client | None = None, create: bool = False
) -> str | None:
    """The id of the deployment's checks run (oldest if several), created when asked."""
    from triptych.monitoring.runs import storage_run

    return storage_run(CHECKS_TAG, deployment, "checks", client=_client(client), create=create)


# -- the data of a window -----------------------------------------------------------------------
def current_frame(
    deployment: str, start_ms: int, end_ms: int, *, client: Client | None = None
) -> pandas.DataFrame:
    """The rows the deployment scored in ``[start_ms, end_ms)`` (primary and canary answers
    with status 200; shadow answers never reached anyone), one row per scored input row, with
    ``prediction`` (a number, or the class for classifiers), ``request_id``, ``time_ms``,
    ``variant`` and ``model_version``."""
    import pandas as pd

    from triptych.monitoring.labels import SCORED_VARIANTS
    from triptych.monitoring.performance import _predicted_class
    from triptych.serving import predlog

    c = _client(client)
    logged = predlog.read(start_ms=start_ms, end_ms=end_ms, deployment=deployment, client=c)
    logged = logged[logged["variant"].isin(SCORED_VARIANTS) & (logged["status"] == 200)]
    records: list[dict[str, Any]] = []
    meta: list[tuple[Any, ...]] = []
    for rec in logged.itertuples(index=False):
        outputs = rec.outputs if isinstance(rec.outputs, list) else [rec.outputs]
        if len(outputs) != len(rec.inputs):
            continue
        when = int(pd.Timestamp(rec.time_ms).value // 1_000_000)
        version = None if pd.isna(rec.model_version) else int(rec.model_version)
        for row, out in zip(rec.inputs, outputs, strict=True):
            records.append(row)
            meta.append(
                (_predicted_class(out), rec.request_id, when, rec.variant, rec.model_name, version)
            )
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    extra = pd.DataFrame.from_records(
        meta,
        columns=[PREDICTION, "request_id", "time_ms", "variant", "model_name", "model_version"],
    )
    return pd.concat([frame.reset_index(drop=True), extra], axis=1)


def _features(
    monitor: Monitor,
    version: int | None,
    reference: pandas.DataFrame,
    current: pandas.DataFrame,
    model_name: str | None,
    c: Client,
) -> list[str]:
    """The model's input columns (its signature), else the columns both sides share."""
    if model_name and version is not None:
        from triptych.models.model import load_model

        try:
            model = load_model(f"models:/{model_name}/{version}", client=c)
            if model.signature is not None:
                return [n for n in model.signature.names if n in reference.columns]
        except NotFound:
            pass
    skip = {PREDICTION, "request_id", "time_ms", "variant", "model_name", "model_version"}
    return [str(col) for col in reference.columns if col in current.columns and col not in skip]


def reference_predictions(
    monitor: Monitor,
    model_name: str,
    version: int,
    reference: pandas.DataFrame,
    features: list[str],
    *,
    client: Client,
    run_id: str | None,
) -> Any:
    """The model's answers on the reference rows: the baseline of prediction drift. Computed
    once per (version, reference) and kept as an artifact of the checks run (when there is
    one: a dry run stores nothing)."""
    import io

    import numpy as np

    from triptych.models.model import load_model
    from triptych.monitoring.performance import _predicted_class

    ref_key = re.sub(r"[^A-Za-z0-9_.-]", "_", monitor.reference.split(":/", 1)[-1])
    path = f"reference_predictions/{model_name}-v{version}-{ref_key}.npy"
    if run_id is not None and any(
        e.path == path for e in client.store.walk_artifacts(run_id, "reference_predictions")
    ):
        return np.load(io.BytesIO(client.read_artifact(run_id, path)), allow_pickle=False)
    model = load_model(f"models:/{model_name}/{version}", client=client)
    answers = model.predict(reference[features])
    values = np.asarray([_predicted_class(a) for a in np.asarray(answers).tolist()])
    if values.dtype == object:
        values = values.astype(str)
    if run_id is not None:
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        client.log_bytes(run_id, buffer.getvalue(), path)
    return values


# -- the check ----------------------------------------------------------------------------------
def _drift_thresholds(monitor: Monitor) -> dict[str, float]:
    """The monitor's thresholds in :mod:`drift`'s names; a switched-off check never fires."""
    t = monitor.thresholds
    off = math.inf
    return {
        "psi": off if t.psi is None else t.psi,
        "ks_statistic": off if t.ks is None else t.ks,
        "wasserstein": off if t.wasserstein is None else t.wasserstein,
        "dataset_share": off if t.drift_share is None else t.drift_share,
    }


def _performance(
    deployment: str, start_ms: int, end_ms: int, monitor: Monitor, c: Client
) -> dict[str, Any] | None:
    """Live score of the window's labelled rows per version, the worst decay, and whether it
    breaches ``max_decay``; None when no label arrived for the window."""
    from triptych.monitoring.performance import PRIMARY, over_time

    span = max(end_ms - start_ms, 1000)
    perf = over_time(
        deployment, window=f"{math.ceil(span / 1000)}s", start_ms=start_ms, end_ms=end_ms, client=c
    )
    if perf.frame.empty:
        return None
    metric = PRIMARY[perf.task][0]
    versions = []
    for row in perf.to_dict()["windows"]:
        versions.append(
            {
                "model_version": row["model_version"],
                "n_labelled": row["n_labelled"],
                "live": row.get(metric),
                "offline": row["offline_score"],
                "decay": row["decay"],
            }
        )
    labelled = sum(v["n_labelled"] for v in versions)
    decays = [v["decay"] for v in versions if v["decay"] is not None and v["n_labelled"] > 0]
    worst = max(decays) if decays else None
    limit = monitor.thresholds.max_decay
    enough = labelled >= MIN_LABELS
    return {
        "task": perf.task,
        "metric": metric,
        "n_labelled": labelled,
        "versions": versions,
        "decay": worst,
        "max_decay": limit,
        "enough_labels": enough,
        "breached": bool(enough and limit is not None and worst is not None and worst > limit),
        "notes": perf.notes,
    }


def _key(text: str) -> str:
    return _BAD_KEY.sub("_", text)[:200]


def run(
    deployment: str,
    *,
    end_ms: int | None = None,
    start_ms: int | None = None,
    alerts: bool = True,
    record: bool = True,
    client: Client | None = None,
) -> CheckResult:
    """Check the window ``[start_ms, end_ms)`` (default: the monitor's window ending now).

    Raises NotFound without a monitor, InvalidInput for an empty or inverted window. With
    ``alerts=False`` nothing is raised, with ``record=False`` nothing is stored (a dry run)."""
    from triptych.data.registry import load
    from triptych.deployments import name_of
    from triptych.monitoring import drift
    from triptych.monitoring.alerts import raise_alert

    c = _client(client)
    name = name_of(deployment)
    monitor = c.store.get_monitor(name)
    end = int(time.time() * 1000) if end_ms is None else int(end_ms)
    start = end - monitor.window_s * 1000 if start_ms is None else int(start_ms)
    if end <= start:
        raise InvalidInput(f"the window ends ({end}) before it starts ({start})")
    current = current_frame(name, start, end, client=c)
    result = CheckResult(name, start, end, monitor.reference, len(current), None)
    primary = current[current["variant"] == "primary"] if len(current) else current
    versions = primary["model_version"].dropna() if len(primary) else primary
    model_name = None
    if len(versions):
        result.model_version = int(versions.mode().iloc[0])
        named = primary["model_name"].dropna()
        model_name = str(named.iloc[0]) if len(named) else None
    if model_name is None:
        model_name = _model_name(name, c)
    run_id = checks_run(name, client=c, create=record)
    result.run_id = run_id
    if len(primary) < MIN_ROWS:
        result.notes.append(
            f"{len(primary)} row(s) scored by the primary in the window: drift needs at least "
            f"{MIN_ROWS}"
        )
    else:
        reference = load(monitor.reference, client=c)
        features = _features(monitor, result.model_version, reference, primary, model_name, c)
        ref = reference[features].copy()
        columns = [f for f in features if f in primary.columns]
        if model_name and result.model_version is not None:
            ref[PREDICTION] = reference_predictions(
                monitor,
                model_name,
                result.model_version,
                reference,
                features,
                client=c,
                run_id=run_id,
            )
            # one model's answers: the window's rows scored by the version compared
            cur = primary[primary["model_version"] == result.model_version]
            result.drift = drift.compare(
                ref,
                cur[[*columns, PREDICTION]],
                columns=features,
                prediction=PREDICTION,
                thresholds=_drift_thresholds(monitor),
            )
        else:
            result.drift = drift.compare(
                ref, primary[columns], columns=features, thresholds=_drift_thresholds(monitor)
            )
    result.performance = _performance(name, start, end, monitor, c)
    if alerts:
        result.alerts = _raise(monitor, result, c, raise_alert)
    if record and run_id is not None:
        _record(c, run_id, result)
    return result


def _model_name(deployment: str, c: Client) -> str | None:
    from triptych.deployments import get
    from triptych.deployments.refs import model_ref

    ref = model_ref(get(deployment, client=c).primary)
    return ref.name if ref else None


def _raise(monitor: Monitor, result: CheckResult, c: Client, raise_alert: Any) -> list[Raised]:
    raised = []
    window = {"start_ms": result.start_ms, "end_ms": result.end_ms}
    d = result.drift
    if d is not None and d.drifted:
        cols = d.drifted_columns
        features = [n for n in cols if n != PREDICTION]
        message = (
            f"{len(features)} of {len([n for n in d.columns if n != PREDICTION])} features "
            f"drifted ({', '.join(features[:8])}) against {monitor.reference}"
        )
        payload = {
            **window,
            "drifted_share": d.drifted_share,
            "features": features,
            "reasons": {n: d.columns[n].reasons for n in features},
        }
        raised.append(
            raise_alert(monitor, "drift", "dataset", "warning", message, payload, client=c)
        )
    if d is not None and d.prediction_drifted:
        col = d.columns[PREDICTION]
        raised.append(
            raise_alert(
                monitor,
                "drift",
                "prediction",
                "warning",
                f"the predictions drifted: {'; '.join(col.reasons)}",
                {**window, "reasons": col.reasons},
                client=c,
            )
        )
    p = result.performance
    if p is not None and p["breached"]:
        message = (
            f"live {p['metric']} is {p['decay']:.1%} worse than offline "
            f"(limit {p['max_decay']:.0%}, {p['n_labelled']} labelled rows)"
        )
        raised.append(
            raise_alert(
                monitor, "performance", "decay", "critical", message, {**window, **p}, client=c
            )
        )
    return raised


def _record(c: Client, run_id: str, result: CheckResult) -> None:
    from triptych.store.entities import Metric

    step, at = result.end_ms // 1000, result.end_ms
    values: dict[str, float] = {"rows": float(result.rows)}
    if result.drift is not None:
        values["drift.share"] = result.drift.drifted_share
        values["drift.drifted"] = float(result.drift.drifted)
        for name, col in result.drift.columns.items():
            for stat in ("psi", "wasserstein", "ks_statistic"):
                v = getattr(col, stat)
                if v is not None and math.isfinite(v):
                    values[f"{stat}.{_key(name)}"] = float(v)
    p = result.performance
    if p is not None:
        values["labelled"] = float(p["n_labelled"])
        if p["decay"] is not None:
            values["decay"] = float(p["decay"])
        lives = [v["live"] for v in p["versions"] if v["live"] is not None]
        if lives:
            weights = [v["n_labelled"] for v in p["versions"] if v["live"] is not None]
            values[f"live.{p['metric']}"] = sum(
                a * b for a, b in zip(lives, weights, strict=True)
            ) / sum(weights)
    c.log_batch(run_id, [Metric(k, v, step, at) for k, v in values.items()])
    c.log_text(
        run_id,
        json.dumps(result.to_dict(), allow_nan=False, default=str),
        f"{PREFIX}/{result.end_ms}.json",
    )


def history(
    deployment: str, *, limit: int | None = None, client: Client | None = None
) -> list[dict[str, Any]]:
    """The recorded checks of ``deployment``, oldest first (the latest ``limit`` if given)."""
    from triptych.deployments import name_of

    c = _client(client)
    run_id = checks_run(name_of(deployment), client=c)
    if run_id is None:
        return []
    paths = sorted(
        (e.path for e in c.store.walk_artifacts(run_id, PREFIX) if e.path.endswith(".json")),
        key=lambda p: int(p.rsplit("/", 1)[-1][: -len(".json")]),
    )
    if limit is not None:
        paths = paths[-limit:]
    return [json.loads(c.read_artifact(run_id, p)) for p in paths]


__all__ = ["CheckResult", "checks_run", "current_frame", "history", "run"]
