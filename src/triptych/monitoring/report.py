"""Monitoring reports: one self-contained HTML page per deployment.

:func:`gather` collects everything the page shows as plain JSON-able data (tested directly,
and printed by ``triptych monitor report --json``): a summary with the latest verdicts, the
reference and current distribution of every feature in the latest window, drift over time
from the recorded checks (:func:`triptych.monitoring.checks.history`), live performance per
window and model version (:func:`triptych.monitoring.performance.over_time`) and the alerts.
:func:`render` turns it into HTML with a Jinja2 template (autoescaped: names and messages are
user text) and the vendored Chart.js inlined, so the file opens offline; :func:`write` saves
it atomically.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, TriptychError

if TYPE_CHECKING:
    import pandas

    from triptych.store.entities import Alert, Monitor
    from triptych.tracking.client import Client

BINS = 20  # equal-width bins of a numeric feature's histogram
MAX_CATEGORIES = 20  # the most frequent categories shown; the rest add up to "(other)"
MAX_ALERTS = 500
OTHER = "(other)"
CHART_JS = "static/vendor/chart.umd.js"  # inside the triptych package
_META = {"prediction", "request_id", "time_ms", "variant", "model_name", "model_version"}

__all__ = ["build", "check_path", "gather", "render", "write"]


def _client(client: Client | None) -> Client:
    from triptych.models import registry

    return registry._client(client)


def utc(ms: int | None) -> str:
    """``2026-12-04 09:30`` (UTC): the time labels of the page."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _plain(value: Any) -> Any:
    """JSON-able values: numpy scalars unwrapped, NaN and infinities as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)


# -- gathering ----------------------------------------------------------------------------------
def gather(
    deployment: str,
    *,
    window: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    last: int | None = None,
    bins: int = BINS,
    client: Client | None = None,
) -> dict[str, Any]:
    """Everything the report of ``deployment`` shows, as JSON-able data.

    The period is ``(start_ms, end_ms]`` for checks (by the end of their window), ``last``
    keeps only the latest N of them; performance is bucketed by ``window`` (default: the
    monitor's). The distributions are those of the latest check's window (without a check in
    the period, the ``window`` ending at ``end_ms`` or now). Raises NotFound without the
    deployment or its monitor, InvalidInput for a bad window, period or ``last``."""
    from triptych import deployments
    from triptych.monitoring import checks, monitors
    from triptych.monitoring.performance import parse_window

    c = _client(client)
    name = deployments.name_of(deployment)
    dep = deployments.get(name, client=c)
    monitor = monitors.get(name, client=c)
    window_ms = parse_window(window) if window else monitor.window_s * 1000
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InvalidInput(
            "the report's period ends before it starts", hint="pass --start before --end"
        )
    if last is not None and last < 1:
        raise InvalidInput(f"--last must be 1 or more, got {last}")
    if bins < 1:
        raise InvalidInput(f"bins must be 1 or more, got {bins}")

    recorded = [
        h
        for h in checks.history(name, client=c)
        if (start_ms is None or h["end_ms"] > start_ms)
        and (end_ms is None or h["end_ms"] <= end_ms)
    ]
    if last is not None:
        recorded = recorded[-last:]
    latest = recorded[-1] if recorded else None
    if latest is not None:
        win = (int(latest["start_ms"]), int(latest["end_ms"]))
    else:
        win_end = int(time.time() * 1000) if end_ms is None else int(end_ms)
        win = (win_end - window_ms, win_end)
    period_start = start_ms
    if period_start is None and last is not None and recorded:
        period_start = int(recorded[0]["start_ms"])

    notes: list[str] = []
    summary = _summary(dep, monitor, latest, recorded, c, notes)
    serves = summary["primary"] or {}
    data = {
        "summary": summary,
        "distributions": _distributions(name, monitor, latest, win, bins, serves, c, notes),
        "drift": _drift_over_time(recorded, monitor),
        "performance": _performance(name, window_ms, period_start, end_ms, c),
        "alerts": _alerts(name, period_start, end_ms, c),
        "loop": _loop(name, monitor, period_start, end_ms, c),
        "period": {
            "start_ms": period_start,
            "end_ms": end_ms,
            "window_ms": window_ms,
            "checks": len(recorded),
            "last": last,
        },
        "notes": notes,
        "generated_ms": int(time.time() * 1000),
    }
    result: dict[str, Any] = _plain(data)
    return result


def _target(address: str | None, c: Client) -> dict[str, Any] | None:
    """What a deployment address serves now; None when it does not resolve any more."""
    if address is None:
        return None
    from triptych.deployments import target

    try:
        t = target(address, client=c)
    except TriptychError as e:
        return {"address": address, "model_name": None, "model_version": None, "error": e.message}
    return {"address": address, "model_name": t.model_name, "model_version": t.model_version}


def _summary(
    dep: Any,
    monitor: Monitor,
    latest: dict[str, Any] | None,
    recorded: list[dict[str, Any]],
    c: Client,
    notes: list[str],
) -> dict[str, Any]:
    verdict: dict[str, Any] | None = None
    if latest is not None:
        d, p = latest.get("drift"), latest.get("performance")
        verdict = {
            "start_ms": latest["start_ms"],
            "end_ms": latest["end_ms"],
            "rows": latest["rows"],
            "model_version": latest["model_version"],
            "drift_checked": d is not None,
            "drifted": latest["drifted"],
            "drifted_share": d["drifted_share"] if d else None,
            "drifted_columns": [
                n for n, col in (d["columns"] if d else {}).items() if col["drifted"]
            ],
            "prediction_drifted": d["prediction_drifted"] if d else None,
            "performance_checked": p is not None,
            "decayed": latest["decayed"],
            "metric": p["metric"] if p else None,
            "decay": p["decay"] if p else None,
            "n_labelled": p["n_labelled"] if p else None,
            "notes": latest.get("notes", []),
        }
    else:
        notes.append("no check recorded in this period: no verdict, no drift over time")
    return {
        "deployment": dep.name,
        "revision": dep.revision,
        "primary": _target(dep.primary, c),
        "canary": _target(dep.canary, c),
        "canary_weight": dep.canary_weight if dep.canary else None,
        "shadow": _target(dep.shadow, c),
        "reference": monitor.reference,
        "monitor_window_s": monitor.window_s,
        "thresholds": asdict(monitor.thresholds),
        "checks": len(recorded),
        "latest": verdict,
    }


def _is_numeric(series: pandas.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype))


def _histogram(ref: pandas.Series, cur: pandas.Series, bins: int) -> dict[str, Any]:
    """Counts of both sides over the same bins: equal-width over the range of both (numbers),
    or the most frequent categories of both; missing values (NaN, None, +-inf) counted apart."""
    import numpy as np

    if _is_numeric(ref) and (len(cur) == 0 or _is_numeric(cur)):
        r = ref.to_numpy(dtype=np.float64, na_value=np.nan)
        k = cur.to_numpy(dtype=np.float64, na_value=np.nan)
        r_ok, k_ok = r[np.isfinite(r)], k[np.isfinite(k)]
        both = np.concatenate([r_ok, k_ok])
        edges = np.histogram_bin_edges(both if both.size else np.zeros(1), bins=bins)
        return {
            "kind": "numeric",
            "edges": edges.tolist(),
            "labels": [f"{(a + b) / 2:.3g}" for a, b in itertools.pairwise(edges)],
            "reference": np.histogram(r_ok, edges)[0].tolist(),
            "current": np.histogram(k_ok, edges)[0].tolist(),
            "reference_missing": int(r.size - r_ok.size),
            "current_missing": int(k.size - k_ok.size),
        }
    ref_counts = ref.dropna().astype(str).value_counts()
    cur_counts = cur.dropna().astype(str).value_counts()
    total = ref_counts.add(cur_counts, fill_value=0).sort_index()  # ties by name
    total = total.sort_values(ascending=False, kind="stable")
    shown = [str(v) for v in total.index[:MAX_CATEGORIES]]
    rest = [v for v in total.index[MAX_CATEGORIES:]]
    labels = [*shown, OTHER] if rest else shown

    def counts(found: pandas.Series) -> list[int]:
        out = [int(found.get(v, 0)) for v in shown]
        if rest:
            out.append(int(found.reindex(rest, fill_value=0).sum()))
        return out

    return {
        "kind": "categorical",
        "edges": None,
        "labels": labels,
        "reference": counts(ref_counts),
        "current": counts(cur_counts),
        "reference_missing": int(ref.isna().sum()),
        "current_missing": int(cur.isna().sum()),
    }


def _distributions(
    name: str,
    monitor: Monitor,
    latest: dict[str, Any] | None,
    win: tuple[int, int],
    bins: int,
    serves: Mapping[str, Any],
    c: Client,
    notes: list[str],
) -> dict[str, Any]:
    """Reference vs current histograms of every feature (and of the prediction) in ``win``,
    over the rows the drift check judges: the primary's, of the version it compared. Without
    a check or rows, the features are those of the model the primary serves now (``serves``)."""
    import pandas as pd

    from triptych.data.registry import load
    from triptych.monitoring import checks

    reference = load(monitor.reference, client=c)
    current = checks.current_frame(name, win[0], win[1], client=c)
    primary = current[current["variant"] == "primary"] if len(current) else current
    version = latest.get("model_version") if latest else None
    if version is None and len(primary) and primary["model_version"].notna().any():
        version = int(primary["model_version"].dropna().mode().iloc[0])
    model_name = None
    if len(primary) and primary["model_name"].notna().any():
        model_name = str(primary["model_name"].dropna().iloc[0])
    if model_name is None:
        model_name = serves.get("model_name")
    if version is None and model_name == serves.get("model_name"):
        version = serves.get("model_version")
    cur = primary[primary["model_version"] == version] if len(primary) and version else primary
    drift = (latest or {}).get("drift") or {}
    judged = drift.get("columns", {})
    if judged:
        features = [n for n in judged if n != checks.PREDICTION and n in reference.columns]
    else:
        features = checks._features(monitor, version, reference, cur, model_name, c)
    ref = reference[features].copy()
    if checks.PREDICTION in judged and model_name and version is not None:
        run_id = checks.checks_run(name, client=c)
        try:
            if run_id is None:
                raise InvalidInput("no checks run")
            ref[checks.PREDICTION] = checks.reference_predictions(
                monitor, model_name, int(version), reference, features, client=c, run_id=run_id
            )
        except TriptychError as e:
            notes.append(f"no reference distribution of the predictions: {e.message}")
    columns = [*features, *([checks.PREDICTION] if checks.PREDICTION in ref.columns else [])]
    out = []
    for col in columns:
        cur_s = cur[col] if col in cur.columns else pd.Series([], dtype=float)
        stats = judged.get(col, {})
        out.append(
            {
                "name": col,
                "is_prediction": col == checks.PREDICTION,
                **_histogram(ref[col], cur_s, bins),
                "reference_rows": len(ref),
                "current_rows": len(cur_s),
                "drifted": stats.get("drifted"),
                "psi": stats.get("psi"),
                "wasserstein": stats.get("wasserstein"),
                "ks_statistic": stats.get("ks_statistic"),
                "cramers_v": stats.get("cramers_v"),
                "reasons": stats.get("reasons", []),
            }
        )
    if not len(cur):
        notes.append(f"no scored rows between {utc(win[0])} and {utc(win[1])} UTC")
    return {
        "start_ms": win[0],
        "end_ms": win[1],
        "model_version": version,
        "from_check": latest is not None,
        "reference_rows": len(reference),
        "current_rows": len(cur),
        "features": out,
    }


def _drift_over_time(recorded: list[dict[str, Any]], monitor: Monitor) -> dict[str, Any]:
    """One point per recorded check, in check order; a check without a drift verdict (too
    few rows) leaves a gap (None)."""
    stats = ("psi", "wasserstein", "ks_statistic")
    names: list[str] = []
    for h in recorded:
        for n in (h.get("drift") or {}).get("columns") or {}:
            if n not in names:
                names.append(n)
    columns: dict[str, dict[str, list[Any]]] = {
        n: {s: [] for s in (*stats, "drifted")} for n in names
    }
    points = []
    for h in recorded:
        d = h.get("drift")
        cols = (d or {}).get("columns") or {}
        points.append(
            {
                "start_ms": h["start_ms"],
                "end_ms": h["end_ms"],
                "label": utc(h["end_ms"]),
                "rows": h["rows"],
                "model_version": h["model_version"],
                "drifted": h["drifted"] if d else None,
                "drifted_share": d["drifted_share"] if d else None,
                "prediction_drifted": d["prediction_drifted"] if d else None,
                "decayed": h["decayed"],
            }
        )
        for n in names:
            col = cols.get(n) or {}
            for s in stats:
                columns[n][s].append(col.get(s))
            columns[n]["drifted"].append(col.get("drifted"))
    t = monitor.thresholds
    return {
        "checks": points,
        "columns": columns,
        "thresholds": {"psi": t.psi, "wasserstein": t.wasserstein, "drift_share": t.drift_share},
    }


def _performance(
    name: str, window_ms: int, start_ms: int | None, end_ms: int | None, c: Client
) -> dict[str, Any]:
    from triptych.monitoring.performance import PRIMARY, over_time

    perf = over_time(
        name, window=f"{window_ms // 1000}s", start_ms=start_ms, end_ms=end_ms, client=c
    )
    data = perf.to_dict()
    metric, lower_is_better, _ = PRIMARY[perf.task]
    rows = []
    for row in data["windows"]:
        rows.append({**row, "label": utc(row["window_start"]), "live": row.get(metric)})
    return {
        "task": perf.task,
        "metric": metric,
        "lower_is_better": lower_is_better,
        "window_ms": perf.window_ms,
        "windows": rows,
        "versions": sorted({r["model_version"] for r in rows if r["model_version"] is not None}),
        "notes": data["notes"],
    }


def _overlaps(first: Any, last: Any, start_ms: int | None, end_ms: int | None) -> bool:
    if not isinstance(first, int) or not isinstance(last, int):
        return False
    return (start_ms is None or last > start_ms) and (end_ms is None or first <= end_ms)


def _alerts(name: str, start_ms: int | None, end_ms: int | None, c: Client) -> list[dict[str, Any]]:
    """The monitor's alerts in the period, newest first: those seen in it, or raised by a check
    of a window in it (checks can judge past windows, so both clocks count)."""
    from triptych.monitoring import alerts

    found: list[Alert] = alerts.list(name, limit=MAX_ALERTS, client=c)
    kept = []
    for a in found:
        window = a.payload or {}
        if _overlaps(a.first_seen, a.last_seen, start_ms, end_ms) or _overlaps(
            window.get("start_ms"), window.get("end_ms"), start_ms, end_ms
        ):
            kept.append(a)
    return [alerts.to_dict(a) for a in kept]


# -- rendering ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _loop(
    name: str, monitor: Monitor, start_ms: int | None, end_ms: int | None, c: Client
) -> dict[str, Any] | None:
    """The closed loop's policy and its actions in the period (oldest first), None when the
    monitor has no policy and the loop never acted."""
    from triptych.monitoring import loop
    from triptych.monitoring.policy import followed_alias

    try:
        model, _ = followed_alias(name, client=c)
    except TriptychError:
        return None
    actions = [
        {"time": e.time, "action": e.action, "version": e.version, "reason": e.reason}
        for e in loop.events(name, model, client=c)
        if (start_ms is None or e.time >= start_ms) and (end_ms is None or e.time < end_ms)
    ]
    if monitor.policy is None and not actions:
        return None
    policy = None
    if monitor.policy is not None:
        policy = {**asdict(monitor.policy), "triggers": list(monitor.policy.triggers)}
    return {"model": model, "policy": policy, "actions": actions}


def chart_js() -> str:
    """The vendored Chart.js, checked to be safe inside a ``<script>`` element."""
    from importlib.resources import files

    text = files("triptych").joinpath(CHART_JS).read_text(encoding="utf-8")
    lowered = text.lower()
    if "</script" in lowered or "<!--" in lowered:  # pragma: no cover - a bad vendor update
        raise TriptychError(f"{CHART_JS} cannot be inlined: it holds '</script' or '<!--'")
    return text


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("triptych.monitoring", "templates"),
        autoescape=True,  # every name, column and message on the page is user text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # tojson escapes <, >, & and ' as \u00XX: "</script>" in the data cannot end the block
    env.policies["json.dumps_kwargs"] = {"allow_nan": False, "sort_keys": False}
    env.filters["utc"] = utc
    env.filters["num"] = _number
    env.filters["duration"] = _duration
    return env


def render(data: Mapping[str, Any]) -> str:
    """The HTML page of gathered ``data``: one file, nothing loaded from the network."""
    from markupsafe import Markup

    template = _environment().get_template("report.html.j2")
    html: str = template.render(data=data, chart_js=Markup(chart_js()))
    return html


def build(deployment: str, **options: Any) -> str:
    """The HTML report of ``deployment`` (``options`` as for :func:`gather`)."""
    return render(gather(deployment, **options))


def check_path(path: str | os.PathLike[str]) -> Path:
    """Where ``path`` points, absolute; InvalidInput when its folder does not exist or it is a
    folder itself."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate: no file system can hold the name
        raw = b"\x00"
    if b"\x00" in raw:
        raise InvalidInput(f"cannot write {os.fspath(path)!r}: not a valid file name (NUL?)")
    target = Path(path).expanduser()
    parent = target.parent.resolve()
    if not parent.is_dir():
        raise InvalidInput(
            f"cannot write {target}: the folder {parent} does not exist",
            hint=f"create it first (mkdir -p {parent}) or choose another path",
        )
    if target.is_dir():
        raise InvalidInput(
            f"cannot write {target}: it is a folder", hint="name a file, e.g. report.html"
        )
    return parent / target.name


def write(
    deployment: str,
    path: str | os.PathLike[str],
    *,
    data: Mapping[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Write the report of ``deployment`` to ``path`` atomically (temp file + rename, so a
    reader never sees half a page) and return where. ``data`` renders already gathered data.
    Raises InvalidInput when the folder of ``path`` does not exist (checked first: nothing is
    gathered or written then)."""
    target = check_path(path)
    html = render(data if data is not None else gather(deployment, **options))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
