"""The pipeline benchmark's rows, targets and table. Driver only (see _machine.py)."""

from __future__ import annotations

from typing import Any

TARGET_OVERHEAD = 0.5  # s: a cached re-run's overhead beyond loading
TARGET_FANOUT = 6.0  # s: "well under 8 s", read as at most three quarters of it


def _row(
    section: str,
    label: str,
    ours: float,
    theirs: float | None = None,
    target: str = "",
    limit: float | None = None,
) -> dict[str, Any]:
    return {
        "section": section,
        "label": label,
        "triptych": ours,
        "dvc": theirs,
        "ratio": theirs / ours if theirs is not None else None,
        "target": target,
        "met": None if limit is None else ours < limit,
    }


def build_rows(raw: dict[str, Any], fanout: tuple[int, float]) -> list[dict[str, Any]]:
    """The report's rows; ``fanout``: the fan-out's steps and seconds a step."""
    c, f, cli, dvc = raw["cached"], raw["fresh"], raw["cli"], raw.get("dvc")
    n = len(c["cached"])
    over = f"< {TARGET_OVERHEAD} s"
    api = "API, in one process"
    rows = [
        _row(api, "load the pipeline file (its imports)", c["load"]),
        _row(api, "open the stores (first use)", c["open_stores"]),
        _row(api, "cold run: 6 misses", c["cold"]),
        _row(api, f"cached run(), median of {n}", c["cached_median"], None, over, TARGET_OVERHEAD),
        _row(api, f"cached run(), max of {n}", c["cached_max"], None, over, TARGET_OVERHEAD),
        _row(api, "train.alpha changed: 3 re-run", c["alpha_changed"]),
        _row("API, new process", "load the pipeline file", f["load"]),
        _row("API, new process", "open the stores", f["open_stores"]),
        _row("API, new process", "first cached run()", f["first"], None, over, TARGET_OVERHEAD),
        _row("API, new process", "second cached run()", f["second"], None, over, TARGET_OVERHEAD),
    ]
    whole = "whole command"
    m = len(cli["cached"])

    def theirs(key: str) -> float | None:
        return float(dvc[key]) if dvc else None

    rows += [
        _row(whole, "cold: 6 steps computed", cli["cold"], theirs("cold")),
        _row(whole, f"unchanged, median of {m}", cli["cached_median"], theirs("cached_median")),
        _row(whole, "train.alpha edited: 3 re-run", cli["alpha_changed"], theirs("alpha_changed")),
    ]
    fan = f"fan-out {fanout[0]} x {fanout[1]:g} s"
    for key, cpus in (("ray_1.0", "1"), ("ray_0.25", "0.25")):
        if key in raw:
            r = raw[key]
            rows += [
                _row(fan, f"ray.init(num_cpus=2) [steps num_cpus={cpus}]", r["init"]),
                _row(fan, f"Ray, cold runtime, num_cpus={cpus}", r["cold"], None, "well < 8 s"),
                _row(fan, f"Ray, warm runtime, num_cpus={cpus}", r["warm"], None, "well < 8 s"),
            ]
            for row in rows[-2:]:
                row["met"] = row["triptych"] <= TARGET_FANOUT
    loc = raw["local"]
    rows += [
        _row(fan, "local executor, workers=2", loc["workers_2"]),
        _row(fan, "local executor, workers=8", loc["workers_8"]),
    ]
    return rows


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def print_report(report: dict[str, Any]) -> None:
    headers = ["", "measure (s)", "triptych", "DVC", "ratio", "target", "met"]
    lines = []
    last = None
    for row in report["rows"]:
        section = row["section"] if row["section"] != last else ""
        last = row["section"]
        lines.append(
            [
                section,
                row["label"],
                f"{row['triptych']:.3f}",
                "-" if row["dvc"] is None else f"{row['dvc']:.3f}",
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                row["target"],
                _verdict(row["met"]),
            ]
        )
    raw, machine, load = report["raw"], report["machine"], report["load_average"]
    title = (
        f"triptych {report['triptych_version']} pipelines"
        + (f" vs DVC {report['dvc_version']}" if report["dvc_version"] else " (no DVC)")
        + (f", Ray {report['ray_version']}" if report["ray_version"] else "")
        + (" (--quick)" if report["quick"] else "")
    )
    cold_share = raw["cached"]["alpha_changed"] / raw["cached"]["cold"]
    notes = [
        "ratio > 1 means triptych is better (DVC's time / triptych's)",
        f"train.alpha changed takes {cold_share:.0%} of the cold run (API, same process)",
        f"whole commands: `{raw['cli']['command']}`"
        + (f" and `{raw['dvc']['command']}`, from process start" if "dvc" in raw else ""),
        f"fan-out floors on 2 CPUs: 4 s with num_cpus=1 per step, 1 s with num_cpus=0.25; "
        f"'met' for the fan-out means <= {TARGET_FANOUT:g} s",
        f"machine: {machine['cpus']} CPUs, {machine['processor']}, Python {machine['python']}, "
        f"{machine['platform']}; load average {load['before']:.1f} before, "
        f"{load['after']:.1f} after",
    ]
    from _report import print_tables  # beside this script (see _machine.py)

    print_tables(title, [[headers, *lines]], notes, right=lambda i: 2 <= i <= 4, width=130)
