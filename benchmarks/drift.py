"""Drift benchmark: ``triptych.monitoring.drift.compare`` against Evidently and scipy.

Data: a reference and a current frame of N rows each (default N = 1M, then 100k), 10
features: 7 numeric and 3 categorical, some with a known shift (see ``FEATURES``), written
once to Parquet in a temp folder. Each tool runs in its own process pinned to one CPU
(``sched_setaffinity``, BLAS/OpenMP threads 1) and reads the same Parquet files; only the
comparison itself is timed (triptych after a small warm-up call that pays scipy's import).

- triptych: ``compare(ref, cur)`` with its default thresholds (effect sizes first).
- Evidently: ``Report([DataDriftPreset()]).run(...)`` (the 0.7 API), with the interpreter
  given by ``--evidently-python`` (default ``/tmp/evidentlyvenv/bin/python``; set it up with
  ``python -m venv /tmp/evidentlyvenv && /tmp/evidentlyvenv/bin/pip install evidently
  "pandas<3" pyarrow``); skipped with a note when it cannot import Evidently.
- scipy: the reference implementations (``ks_2samp``, ``wasserstein_distance``,
  ``chi2_contingency``, PSI by ``np.histogram``) with triptych's documented rule, and the
  bare "p < 0.01" verdict to show why p-values alone flag everything at this size.

    python benchmarks/drift.py             # 1M and 100k rows
    python benchmarks/drift.py --quick     # 100k rows only
    python benchmarks/drift.py --rows 1000000 --no-evidently
    python benchmarks/drift.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: name -> (kind, the shift put into the current frame)
FEATURES: dict[str, tuple[str, str]] = {
    "age": ("numeric", "mean +0.5 std"),
    "income": ("numeric", "std x2.5"),
    "score": ("numeric", "none"),
    "tiny": ("numeric", "mean +0.02 std (negligible)"),
    "visits": ("numeric", "none (integers)"),
    "latency": ("numeric", "10% -> 25% missing"),
    "balance": ("numeric", "none (heavy tail)"),
    "city": ("categorical", "shares 50/30/20 -> 30/30/40"),
    "plan": ("categorical", "new category (8%)"),
    "device": ("categorical", "none"),
}
DEFAULT_EVIDENTLY = "/tmp/evidentlyvenv/bin/python"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_data(rows: int, folder: Path) -> tuple[Path, Path]:
    """Write reference.parquet and current.parquet (once per size) and return their paths."""
    import numpy as np
    import pandas as pd

    ref_path, cur_path = folder / f"ref-{rows}.parquet", folder / f"cur-{rows}.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    rng = np.random.default_rng(rows)

    def frame(shifted: bool) -> pd.DataFrame:
        n = rows
        latency = rng.gamma(2.0, 50.0, n)
        latency[rng.random(n) < (0.25 if shifted else 0.10)] = np.nan
        city_p = [0.3, 0.3, 0.4] if shifted else [0.5, 0.3, 0.2]
        plans = ["free", "pro", "team"] + (["enterprise"] if shifted else [])
        plan_p = [0.55, 0.3, 0.07, 0.08] if shifted else [0.6, 0.3, 0.1]
        return pd.DataFrame(
            {
                "age": rng.normal(55 if shifted else 50, 10, n),
                "income": rng.normal(3000, 1000 * (2.5 if shifted else 1.0), n),
                "score": rng.normal(0, 1, n),
                "tiny": rng.normal(0.02 if shifted else 0.0, 1, n),
                "visits": rng.poisson(3, n),
                "latency": latency,
                "balance": rng.pareto(3.0, n) * 1000,
                "city": rng.choice(["paris", "lyon", "nice"], n, p=city_p),
                "plan": rng.choice(plans, n, p=plan_p),
                "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2]),
            }
        )

    frame(False).to_parquet(ref_path, index=False)
    frame(True).to_parquet(cur_path, index=False)
    return ref_path, cur_path


TRIPTYCH_WORKER = """
import json, sys, time
import numpy as np, pandas as pd
from triptych.monitoring.drift import compare
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
compare(ref.head(1000), cur.head(1000))  # warm-up: scipy's import
start = time.perf_counter()
report = compare(ref, cur)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "verdicts": {k: c.drifted for k, c in report.columns.items()},
                  "report": report.to_dict()}))
"""

EVIDENTLY_WORKER = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
cats = json.loads(sys.argv[3])
nums = [c for c in ref.columns if c not in cats]
start = time.perf_counter()
definition = DataDefinition(numerical_columns=nums, categorical_columns=cats)
snapshot = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(cur, data_definition=definition),
    Dataset.from_pandas(ref, data_definition=definition),
)
data = snapshot.dict()
seconds = time.perf_counter() - start
verdicts, methods = {}, {}
for metric in data["metrics"]:
    config = metric["config"]
    if not config["type"].endswith("ValueDrift"):
        continue
    method, value, threshold = config["method"], metric["value"], config["threshold"]
    # p-value tests drift below the threshold; distances at or above it.
    is_test = "p_value" in method or "test" in method.lower()
    verdicts[config["column"]] = bool(value < threshold if is_test else value >= threshold)
    methods[config["column"]] = method
import evidently
print(json.dumps({"seconds": seconds, "verdicts": verdicts, "methods": methods,
                  "version": evidently.__version__}))
"""


def _pinned_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({var: "1" for var in THREAD_VARS})
    return env


def _run_worker(python: str, code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter pinned to one CPU; parse its last line as JSON."""

    def pin() -> None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    done = subprocess.run(
        [python, "-c", code, *args],
        env=_pinned_env(),
        capture_output=True,
        text=True,
        preexec_fn=pin,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def evidently_available(python: str) -> str | None:
    """Evidently's version under ``python``, or None when it cannot be imported."""
    if not Path(python).exists():
        return None
    done = subprocess.run(
        [python, "-c", "import evidently; print(evidently.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def scipy_reference(ref_path: Path, cur_path: Path) -> dict[str, Any]:
    """Verdicts from scipy's own tests: triptych's rule, and the bare p < 0.01 rule."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    from triptych.monitoring.drift import Thresholds

    t = Thresholds()
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    start = time.perf_counter()
    rule: dict[str, bool] = {}
    pvalue: dict[str, bool] = {}
    for name, (kind, _) in FEATURES.items():
        r_all, c_all = ref[name], cur[name]
        missing = np.array(
            [[r_all.isna().sum(), r_all.notna().sum()], [c_all.isna().sum(), c_all.notna().sum()]]
        )
        moved = abs(r_all.isna().mean() - c_all.isna().mean()) > t.missing_rate
        missing_p = stats.chi2_contingency(missing, correction=False)[1] if moved else 1.0
        missing_moved = moved and missing_p < t.chi2_pvalue
        r, c = r_all.dropna(), c_all.dropna()
        if kind == "numeric":
            a, b = r.to_numpy(float), c.to_numpy(float)
            ks = stats.ks_2samp(a, b, method="asymp")
            wd = stats.wasserstein_distance(a, b) / np.std(a)
            edges = np.unique(np.quantile(a, np.arange(1, 10) / 10, method="inverted_cdf"))
            bins = np.concatenate(([-np.inf], edges, [np.inf]))
            psi = _psi(np.histogram(a, bins)[0] / a.size, np.histogram(b, bins)[0] / b.size)
            effect = psi > t.psi or wd > t.wasserstein or ks.statistic >= t.ks_statistic
            rule[name] = bool((effect and ks.pvalue < t.ks_pvalue) or missing_moved)
            pvalue[name] = bool(ks.pvalue < 0.01)
        else:
            cats = sorted(set(r.unique()) | set(c.unique()))
            counts = np.vstack(
                [
                    r.value_counts().reindex(cats, fill_value=0).to_numpy(),
                    c.value_counts().reindex(cats, fill_value=0).to_numpy(),
                ]
            )
            chi2, p, _, _ = stats.chi2_contingency(counts, correction=False)
            v = np.sqrt(chi2 / counts.sum())
            psi = _psi(counts[0] / counts[0].sum(), counts[1] / counts[1].sum())
            effect = psi > t.psi or v >= t.cramers_v
            rule[name] = bool((effect and p < t.chi2_pvalue) or missing_moved)
            pvalue[name] = bool(p < 0.01)
    return {"seconds": time.perf_counter() - start, "verdicts": rule, "pvalue_only": pvalue}


def _psi(r: Any, c: Any) -> float:
    import numpy as np

    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


def run_size(rows: int, folder: Path, evidently: str | None) -> dict[str, Any]:
    """Generate (or reuse) the data for one size and run every contender on it."""
    ref_path, cur_path = make_data(rows, folder)
    trip = _run_worker(sys.executable, TRIPTYCH_WORKER, str(ref_path), str(cur_path))
    result: dict[str, Any] = {
        "rows": rows,
        "triptych": {"seconds": trip["seconds"], "verdicts": trip["verdicts"]},
        "scipy": scipy_reference(ref_path, cur_path),
    }
    if evidently:
        cats = json.dumps([n for n, (k, _) in FEATURES.items() if k == "categorical"])
        try:
            result["evidently"] = _run_worker(
                evidently, EVIDENTLY_WORKER, str(ref_path), str(cur_path), cats
            )
        except RuntimeError as exc:
            result["evidently_error"] = str(exc)
    ev = result.get("evidently")
    if ev:
        result["ratio"] = ev["seconds"] / trip["seconds"]
    return result


def render(report: dict[str, Any]) -> None:
    """Rich tables: timings per size, then verdicts per feature for each size."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    timing = Table(title="Drift on 10 features (reference and current of N rows each)")
    for col in ("rows", "triptych s", "Evidently s", "Evidently / triptych", "scipy ref s"):
        timing.add_column(col, justify="right")
    for res in report["results"]:
        ev = res.get("evidently")
        timing.add_row(
            f"{res['rows']:,}",
            f"{res['triptych']['seconds']:.2f}",
            f"{ev['seconds']:.1f}" if ev else res.get("evidently_error", "-"),
            f"{res['ratio']:.0f}x" if ev else "-",
            f"{res['scipy']['seconds']:.1f}",
        )
    console.print(timing)

    def mark(value: bool | None) -> str:
        return "-" if value is None else ("[red]drift[/]" if value else "ok")

    for res in report["results"]:
        table = Table(title=f"Verdicts at {res['rows']:,} rows")
        for col in ("feature", "known shift", "triptych", "Evidently", "scipy (rule)"):
            table.add_column(col)
        for col in ("scipy p<0.01", "= scipy", "= Evidently"):
            table.add_column(col)
        ev = res.get("evidently", {}).get("verdicts", {})
        for name, (_, shift) in FEATURES.items():
            mine = res["triptych"]["verdicts"][name]
            ref = res["scipy"]["verdicts"][name]
            theirs = ev.get(name)
            table.add_row(
                name,
                shift,
                mark(mine),
                mark(theirs),
                mark(ref),
                mark(res["scipy"]["pvalue_only"][name]),
                "yes" if mine == ref else "[yellow]no[/]",
                "-" if theirs is None else ("yes" if mine == theirs else "[yellow]no[/]"),
            )
        console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", help="sizes (default 1000000 100000)")
    parser.add_argument("--quick", action="store_true", help="100k rows only")
    parser.add_argument("--evidently-python", default=DEFAULT_EVIDENTLY)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--data-dir", type=Path, help="keep the Parquet files here")
    args = parser.parse_args()
    sizes = args.rows or ([100_000] if args.quick else [1_000_000, 100_000])
    version = None if args.no_evidently else evidently_available(args.evidently_python)
    if not args.no_evidently and version is None and not args.json:
        print(f"Evidently not importable with {args.evidently_python}: skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="triptych-drift-") as tmp:
        folder = args.data_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = [
            run_size(rows, folder, args.evidently_python if version else None) for rows in sizes
        ]
    import numpy
    import pandas
    import scipy

    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
        },
        "versions": {
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "scipy": scipy.__version__,
            "evidently": version,
        },
        "features": {k: {"kind": v[0], "shift": v[1]} for k, v in FEATURES.items()},
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render(report)


if __name__ == "__main__":
    main()
