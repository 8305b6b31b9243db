"""The AutoML benchmark's summary and report: per dataset and metric, each contender's
figures over the splits, triptych's ratios, paired differences and verdicts against the
targets of issue 6; printed as tables (rich when installed)."""

from __future__ import annotations

import statistics
from typing import Any

from _automl_workers import DATASETS, BenchmarkError

TARGET_DIABETES_MSE = 2950.0  # issue 6: diabetes mean test MSE at 10 s per split
TOOLS = ("triptych", "flaml")
METRIC_LABELS = {"mse": "MSE", "log_loss": "log loss", "accuracy": "accuracy"}
METRIC_FORMATS = {"mse": "{:.0f}", "log_loss": "{:.4f}", "accuracy": "{:.4f}"}
PRECISE_FORMATS = {"mse": "{:.1f}", "log_loss": "{:.5f}", "accuracy": "{:.4f}"}  # verdicts
SHORT_NAMES = {"hist_gradient_boosting": "hgb", "random_forest": "rf", "extra_trees": "et"}
OVERRUN = 1.1  # a fit longer than this times the budget is flagged


def _series(fits: dict[str, Any], kind: str, name: str, splits: list[int]) -> dict[str, Any]:
    """Per-split results of one contender: ``{split: fit}`` for the fits that worked, and
    the splits that failed."""
    field = "ridge" if kind == "ridge" else None
    source = "baseline" if kind in ("baseline", "ridge") else kind
    ok: dict[int, Any] = {}
    failed = []
    for split in splits:
        fit = fits.get(f"{source}/{name}/{split}")
        if fit is None:
            continue
        if "error" in fit:
            failed.append(split)
            continue
        if source == "baseline":
            fit = {**fit[field or "baseline"], "digest": fit["digest"]}
        ok[split] = fit
    return {"ok": ok, "failed": failed}


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "max": max(values) if values else None,
    }


def _better(ours: float, theirs: float, lower_is_better: bool) -> bool:
    return ours < theirs if lower_is_better else ours > theirs


def _ratio(ours: float | None, theirs: float | None, lower_is_better: bool) -> float | None:
    """Above 1 when triptych is better."""
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return None
    return theirs / ours if lower_is_better else ours / theirs


def summarise(
    fits: dict[str, Any], names: list[str], splits: list[int], budget: float
) -> dict[str, Any]:
    """Per dataset and metric: each contender's per-split figures, mean and std; triptych's
    ratios, paired wins and verdicts against the targets (on the primary metric)."""
    out: dict[str, Any] = {}
    for name in names:
        dataset = DATASETS[name]
        kinds = ["baseline", *(["ridge"] if dataset.task == "regression" else []), *TOOLS]
        series = {kind: _series(fits, kind, name, splits) for kind in kinds}
        digests = {
            split: fit["digest"] for kind in kinds for split, fit in series[kind]["ok"].items()
        }
        for kind in kinds:
            for split, fit in series[kind]["ok"].items():
                if fit["digest"] != digests[split]:
                    raise BenchmarkError(f"{kind} saw another test part of {name} split {split}")
        entry: dict[str, Any] = {"task": dataset.task, "metrics": {}, "contenders": {}}
        for kind in kinds:
            ok = series[kind]["ok"]
            entry["contenders"][kind] = {
                "splits": sorted(ok),
                "failed": series[kind]["failed"],
                "fit_seconds": _stats([f["fit_seconds"] for f in ok.values()]),
                "trials": _stats([f["trials"] for f in ok.values() if f.get("trials")]),
                "best": [ok[i].get("best") for i in sorted(ok)],
                "cv_score": _stats([f["cv_score"] for f in ok.values() if f.get("cv_score")]),
            }
        for metric, lower in zip(dataset.metrics, dataset.lower_is_better, strict=True):
            per_split = {
                kind: {i: f["scores"][metric] for i, f in series[kind]["ok"].items()}
                for kind in kinds
            }
            m: dict[str, Any] = {
                "primary": metric == dataset.metrics[0],
                "lower_is_better": lower,
                "per_split": {k: [v.get(i) for i in splits] for k, v in per_split.items()},
                "stats": {k: _stats(list(v.values())) for k, v in per_split.items()},
                "vs": {},
            }
            ours = per_split["triptych"]
            for other in kinds:
                if other == "triptych":
                    continue
                theirs = per_split[other]
                common = sorted(set(ours) & set(theirs))
                complete = len(common) == len(splits) and not series["triptych"]["failed"]
                mean_ours = statistics.fmean(ours[i] for i in common) if common else None
                mean_theirs = statistics.fmean(theirs[i] for i in common) if common else None
                m["vs"][other] = {
                    "splits": len(common),
                    "ratio": _ratio(mean_ours, mean_theirs, lower),
                    "wins": sum(_better(ours[i], theirs[i], lower) for i in common),
                    "losses": sum(_better(theirs[i], ours[i], lower) for i in common),
                    # paired: triptych's figure minus the other's on the same split
                    "difference": _stats([ours[i] - theirs[i] for i in common]),
                    "met": (
                        None
                        if not common or mean_ours is None or mean_theirs is None
                        else complete and not _better(mean_theirs, mean_ours, lower)
                    ),
                }
            entry["metrics"][metric] = m
        if name == "diabetes":
            mse = entry["metrics"]["mse"]["stats"]["triptych"]
            complete = mse["n"] == len(splits)
            entry["target_mse"] = {
                "limit": TARGET_DIABETES_MSE,
                "mean": mse["mean"],
                "met": None
                if mse["mean"] is None
                else complete and mse["mean"] <= TARGET_DIABETES_MSE,
                "applies": budget == 10.0 and splits == list(range(10)),
            }
        out[name] = entry
    return out


# -- the report ---------------------------------------------------------------------------------
def _fmt(metric: str, stats: dict[str, Any] | None, splits: int) -> str:
    if not stats or stats["mean"] is None:
        return "-"
    text = METRIC_FORMATS[metric].format(stats["mean"])
    if stats["std"] is not None:
        text += " ± " + METRIC_FORMATS[metric].format(stats["std"])
    if stats["n"] != splits:
        text += f" (n={stats['n']})"
    return text


def _paired(diff: dict[str, Any], fmt: str) -> str:
    """Mean paired difference and its standard error (std / sqrt(n))."""
    if diff["mean"] is None:
        return ""
    text = ("+" if diff["mean"] >= 0 else "") + fmt.format(diff["mean"])
    if diff["std"] is not None:
        text += " ± " + fmt.format(diff["std"] / diff["n"] ** 0.5)
    return text


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def report_lines(report: dict[str, Any], per_split: bool) -> tuple[str, list[list[list[str]]]]:
    """The title, and the tables (header row first) of the report."""
    s = report["settings"]
    n = s["splits"]
    figures = [
        [
            "dataset",
            "metric",
            "baseline",
            "Ridge(0.5)",
            "triptych",
            "FLAML",
            "vs baseline",
            "vs FLAML",
        ]
    ]
    targets = [
        [
            "dataset",
            "target (primary metric, mean)",
            "triptych",
            "other",
            "paired diff ± SE",
            "wins/losses",
            "met",
        ]
    ]
    details = [["dataset", "contender", "fit s (mean, max)", "trials", "CV score", "picked"]]
    first = s.get("first", 0)
    splits_table = [["dataset", "contender", *(str(first + i) for i in range(n))]]
    for name, entry in report["summary"].items():
        for metric, m in entry["metrics"].items():
            st = m["stats"]

            def ratio(other: str, m: dict[str, Any] = m) -> str:
                r = m["vs"].get(other, {}).get("ratio")
                return "-" if r is None else f"{r:.3f}x"

            figures.append(
                [
                    name,
                    METRIC_LABELS[metric] + (" *" if m["primary"] else ""),
                    _fmt(metric, st["baseline"], n),
                    _fmt(metric, st.get("ridge"), n),
                    _fmt(metric, st["triptych"], n),
                    _fmt(metric, st["flaml"], n),
                    ratio("baseline"),
                    ratio("flaml"),
                ]
            )
            if not m["primary"]:
                continue
            label = METRIC_LABELS[metric]
            fmt = PRECISE_FORMATS[metric]
            ours = st["triptych"]["mean"]
            if "target_mse" in entry:
                t = entry["target_mse"]
                targets.append(
                    [
                        name,
                        f"{label} <= {t['limit']:.0f}"
                        + ("" if t["applies"] else " (set for 10 splits at 10 s)"),
                        "-" if ours is None else fmt.format(ours),
                        fmt.format(t["limit"]),
                        "",
                        "",
                        _verdict(t["met"]),
                    ]
                )
            for other, title in (("baseline", "baseline"), ("flaml", "FLAML")):
                vs = m["vs"][other]
                theirs = st[other]["mean"]
                sign = "<=" if m["lower_is_better"] else ">="
                targets.append(
                    [
                        name,
                        f"{label} {sign} {title}'s",
                        "-" if ours is None else fmt.format(ours),
                        "-" if theirs is None else fmt.format(theirs),
                        _paired(vs["difference"], fmt),
                        f"{vs['wins']}/{vs['losses']} of {vs['splits']}" if vs["splits"] else "",
                        _verdict(vs["met"]),
                    ]
                )
            for kind, values in m["per_split"].items():
                splits_table.append(
                    [
                        name,
                        kind,
                        *("-" if v is None else METRIC_FORMATS[metric].format(v) for v in values),
                    ]
                )
        for kind, c in entry["contenders"].items():
            if kind == "ridge":
                continue
            fit = c["fit_seconds"]
            fit_text = "-" if fit["mean"] is None else f"{fit['mean']:.1f}, {fit['max']:.1f}"
            picked = [_short(b) for b in c["best"] if b]
            cv = c["cv_score"]["mean"]
            details.append(
                [
                    name,
                    kind + (f" ({len(c['failed'])} failed)" if c["failed"] else ""),
                    fit_text,
                    "-" if c["trials"]["mean"] is None else f"{c['trials']['mean']:.0f}",
                    "-" if cv is None else f"{cv:.4g}",
                    _picks(picked),
                ]
            )
    title = (
        f"triptych {report['triptych_version']} AutoML"
        + (f" vs FLAML {report['flaml_version']}" if report["flaml_version"] else " (no FLAML)")
        + (f": {n} splits" if first == 0 else f": splits {first}-{first + n - 1}")
        + f", {s['budget']:g} s per split, {s['cpus']} CPU"
    )
    tables = [figures, targets, details]
    if per_split:
        tables.append(splits_table)
    return title, tables


def _picks(picked: list[str]) -> str:
    """The most frequent pick and how often, or how many ensembles when all differ."""
    if not picked:
        return "-"
    common = min(set(picked), key=lambda p: (-picked.count(p), p))
    if len(set(picked)) == 1:
        return common
    if picked.count(common) > 1:
        return f"{common} ({picked.count(common)}/{len(picked)})"
    ensembles = sum(p.startswith("ensemble") for p in picked)
    return f"all different: {ensembles} ensembles, {len(picked) - ensembles} single"


def _short(name: str) -> str:
    for long, short in SHORT_NAMES.items():
        name = name.replace(long, short)
    return name


def overruns(report: dict[str, Any]) -> list[str]:
    """A note for each tool whose fits ran over the budget (by more than ``OVERRUN``)."""
    budget = report["settings"]["budget"]
    notes = []
    for name, entry in report["summary"].items():
        for kind in TOOLS:
            fit = entry["contenders"][kind]["fit_seconds"]
            if fit["max"] is not None and fit["max"] > OVERRUN * budget:
                notes.append(
                    f"{kind} ran over the {budget:g} s budget on {name}: "
                    f"{fit['mean']:.1f} s per fit on average, up to {fit['max']:.1f} s"
                )
    return notes


def print_report(report: dict[str, Any], per_split: bool) -> None:
    title, tables = report_lines(report, per_split)
    machine, load = report["machine"], report["load_average"]
    extras = report["optional_estimators"]
    notes = [
        "mean ± std over the splits' test parts; * = primary metric (optimised, judged); "
        "ratio > 1 means triptych is better",
        "paired diff: triptych's figure minus the other's, mean over the splits ± its standard "
        "error; wins/losses: splits on which triptych's test figure is better/worse; "
        "picked: hgb = hist_gradient_boosting, rf = random_forest, "
        "et = extra_trees",
        "CV score: each tool's own cross-validated score of its pick, as it reports it "
        "(triptych's sign convention; FLAML's best_loss)",
        f"LightGBM/XGBoost importable: triptych {', '.join(extras['triptych']) or 'neither'}; "
        f"FLAML {', '.join(extras['flaml']) or 'neither'}",
        *(f"{tool}: {why}" for tool, why in report["skipped"].items()),
        *(f"WARNING: {note}" for note in overruns(report)),
        *(
            [f"WARNING: triptych's fits come from {len(sources)} versions of its AutoML source"]
            if len(sources := report["triptych_sources"]) > 1
            else []
        ),
        f"machine: {machine['cpus']} CPUs, {machine['processor']}, Python {machine['python']}, "
        f"{machine['platform']}; load average {load['before']:.1f} before, "
        f"{load['after']:.1f} after; {report['date']} to {report['finished']}",
    ]
    from _report import print_tables  # beside this script (see _machine.py)

    print_tables(title, tables, notes, right=lambda i: i >= 2, width=140)
