"""The serving benchmark's summary and report: medians over repeats, ratios between the
servers, the targets, and the table. Driver only (see _machine.py)."""

from __future__ import annotations

import statistics
import sys
from typing import Any


def summarise(servers: list[Any]) -> dict[str, dict[str, Any]]:
    """Per server, the median over repeats of each figure (the repeats are kept too)."""
    out: dict[str, dict[str, Any]] = {}
    for s in servers:
        figures = {
            k: statistics.median(r[k] for r in s.results)
            for k in ("p50_ms", "p99_ms", "rps_1", "rps_n", "p50_n_ms", "p99_n_ms")
        }
        out[s.key] = {**figures, "bad": sum(r["bad"] for r in s.results), "version": s.version}
    return out


PAIRS = (("triptych", "mlflow"), ("triptych", "ceiling"), ("ceiling", "mlflow"))


def ratios(summary: dict[str, dict[str, Any]], one: str, other: str) -> dict[str, float] | None:
    """``one`` against ``other``; above 1 means ``one`` is better. The ceiling against MLflow
    says how far any server on this stack can get from MLflow on this machine."""
    if one not in summary or other not in summary:
        return None
    ours, theirs = summary[one], summary[other]
    return {
        "p50_ms": theirs["p50_ms"] / ours["p50_ms"],
        "p99_ms": theirs["p99_ms"] / ours["p99_ms"],
        "rps_1": ours["rps_1"] / theirs["rps_1"],
        "rps_n": ours["rps_n"] / theirs["rps_n"],
    }


def targets(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    ours = summary.get("triptych")
    theirs = summary.get("mlflow")
    rows = [
        {
            "target": "triptych p50 <= 1 ms",
            "value": ours and ours["p50_ms"],
            "met": None if ours is None else ours["p50_ms"] <= 1.0,
        }
    ]
    for key, label in (("rps_1", "1 client"), ("rps_n", "8 clients")):
        ratio = ours[key] / theirs[key] if ours and theirs else None
        rows.append(
            {
                "target": f"req/s ({label}) >= 10x MLflow",
                "value": ratio,
                "met": None if ratio is None else ratio >= 10.0,
            }
        )
    return rows


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=140)
    sizes, labels, cpus = report["sizes"], report["labels"], report["cpus"]
    table = Table(
        title=f"Serving one-row requests, one worker per server ({report['date']}"
        + (", --quick" if report["quick"] else "")
        + ")",
        title_justify="left",
    )
    for header in (
        "server",
        "p50 ms",
        "p99 ms",
        "req/s 1 client",
        f"req/s {sizes['clients']} clients",
        f"p50/p99 ms, {sizes['clients']} clients",
        "bad",
    ):
        table.add_column(header, justify="left" if header == "server" else "right", no_wrap=True)
    summary = report["summary"]
    for key in labels:
        if key in summary:
            s = summary[key]
            table.add_row(
                labels[key],
                f"{s['p50_ms']:.2f}",
                f"{s['p99_ms']:.2f}",
                f"{s['rps_1']:,.0f}",
                f"{s['rps_n']:,.0f}",
                f"{s['p50_n_ms']:.2f} / {s['p99_n_ms']:.2f}",
                str(s["bad"]),
                style="red" if s["bad"] else None,
            )
    for one, other in PAIRS:
        r = report["ratios"].get(f"{one}/{other}")
        if r:
            table.add_row(
                f"{labels[one]} vs {labels[other]}",
                f"{r['p50_ms']:.2f}x",
                f"{r['p99_ms']:.2f}x",
                f"{r['rps_1']:.2f}x",
                f"{r['rps_n']:.2f}x",
                "",
                "",
                style="bold" if one == "triptych" else "dim",
            )
    console.print(table)
    for t in report["targets"]:
        if t["value"] is None:
            verdict, value = "n/a", "-"
        else:
            verdict = "yes" if t["met"] else "NO"
            value = f"{t['value']:.2f} ms" if "ms" in t["target"] else f"{t['value']:.1f}x"
        console.print(
            f"target {t['target']}: {value} -> {verdict}",
            style="red" if t["met"] is False else None,
            highlight=False,
        )
    notes = [
        "ratios above 1 mean triptych is better (latency: other/triptych; req/s: triptych/other)",
        f"{sizes['sequential']:,} sequential requests after {sizes['warmup']} warm-up on one "
        f"keep-alive connection; {sizes['clients']} clients ({report['client_procs']} processes) "
        f"for {sizes['seconds']:g} s; median of {report['repeat']} repeat(s)",
        f"server on CPU {cpus['server']}, client on CPU {cpus['client']}; the model's own "
        f"predict on one row: {report['predict_ms']:.3f} ms",
        f"machine: {report['machine']['cpus']} CPUs, {report['machine']['processor']}, "
        f"Python {report['machine']['python']}",
        *(f"{labels[k]}: {v['version']}" for k, v in summary.items()),
        *report["notes"],
    ]
    for note in notes:
        console.print(note, style="dim", markup=False, highlight=False)


def print_profile(path: str, top: int = 25) -> None:
    import pstats

    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
