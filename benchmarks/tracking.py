"""Tracking benchmark: triptych and MLflow side by side, on SQLite, in one run.

Workloads (the same code path for both tools, each on a fresh SQLite database in its own
temporary folder, artifacts in that folder too):

1. ``log_metric``: 10,000 per-call ``log_metric(key, value, step=i)`` in one run. The clock
   stops when the points are in the database: for triptych after ``triptych.flush()`` (its
   ``log_metric`` only appends to the buffer of a background writer), for MLflow after the
   last call (each call is a synchronous database write). Reported in metrics/s.
2. ``runs``: 500 runs through the fluent API (``start_run`` context manager, ``log_params``
   with 2 params, ``log_metric`` x2) in one experiment. Reported in runs/s.
3. ``search``: ``search_runs`` over those runs with a metric filter and an ordering
   (``metrics.m1 < 250`` ordered by ``metrics.m1 DESC``, ``max_results=1000``); median of 5
   calls after one warm-up call. Reported in ms.
4. ``--help``: ``triptych --help`` and ``mlflow --help`` as subprocesses; median of 5 runs
   after one warm-up run. Reported in seconds.

Each workload runs in a fresh subprocess per tool (the script re-invokes a copy of itself,
placed in the temporary folder, with ``--worker TOOL WORKLOAD``), so neither tool's imports,
caches or threads touch the other's timings. The copy sits outside any git checkout, so the
figures do not depend on the state of your working tree (both tools record the git state of
the running script; triptych also stores its uncommitted diff). Workers get the environment
without any ``TRIPTYCH_*`` or ``MLFLOW_*`` variable, with telemetry off. Database creation
and schema migration happen before the clock starts. MLflow is measured only when
``import mlflow`` works in this interpreter; otherwise triptych's figures are printed alone.

Run it with an interpreter that has triptych and (for the comparison) MLflow installed::

    python benchmarks/tracking.py            # full run, about 2 minutes (mostly MLflow)
    python benchmarks/tracking.py --quick    # smaller counts, a smoke test of ~30 s
    python benchmarks/tracking.py --json     # the report as JSON on stdout, not a table
    python benchmarks/tracking.py --json out.json   # the table, and the JSON in out.json
    python benchmarks/tracking.py --no-mlflow

Ratios are normalised so that a ratio above 1 always means triptych is better: throughputs
are triptych / MLflow, durations are MLflow / triptych.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TOOLS = ("triptych", "mlflow")
WORKLOADS = ("log_metric", "runs", "search")
EXPERIMENT = "benchmark"
METRIC_KEY = "loss"
ORDER_BY = ["metrics.m1 DESC"]
RESULT_MARKER = "BENCHMARK-RESULT "
WORKER_TIMEOUT = 3600  # seconds; MLflow's 10,000 synchronous writes take a minute or two


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    metrics: int  # log_metric calls in one run
    runs: int  # runs created, then searched
    repeats: int  # timed calls of search_runs and of --help (after one warm-up each)

    @property
    def threshold(self) -> int:
        """Filter bound: ``metrics.m1 < threshold`` matches half of the runs."""
        return self.runs // 2

    @property
    def filter_string(self) -> str:
        return f"metrics.m1 < {self.threshold}"


FULL = Sizes(metrics=10_000, runs=500, repeats=5)
QUICK = Sizes(metrics=1_000, runs=50, repeats=3)


@dataclass(frozen=True)
class Measure:
    """One row of the report."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: str
    target_ratio: float | None = None  # met when ratio >= this
    target_max: float | None = None  # met when triptych's value <= this


MEASURES = (
    Measure("log_metric", "log_metric per call", "metrics/s", True, ">= 50x MLflow", 50.0),
    Measure("runs", "create run (2 params, 2 metrics)", "runs/s", True, ">= 10x MLflow", 10.0),
    Measure("search", "search_runs (filter, order)", "ms", False, ">= 10x MLflow", 10.0),
    Measure("help", "CLI --help cold start", "s", False, "triptych <= 0.3 s", target_max=0.3),
)


class BenchmarkError(RuntimeError):
    """A worker failed or returned something unexpected."""


# -- workers: run in their own process, print one result line ------------------------------------
def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


def _triptych_log_metric(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import triptych

    with triptych.start_run(experiment=EXPERIMENT) as run:  # opens and migrates the store
        start = time.perf_counter()
        for i in range(sizes.metrics):
            triptych.log_metric(METRIC_KEY, i * 0.001, step=i)
        triptych.flush()  # the points are in the database from here on
        seconds = time.perf_counter() - start
    stored = len(triptych.Client().get_metric_history(run.run_id, METRIC_KEY))
    _check(stored == sizes.metrics, f"triptych stored {stored} of {sizes.metrics} points")
    return {"seconds": seconds, "value": sizes.metrics / seconds}


def _triptych_runs(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import triptych

    triptych.Client().create_experiment(EXPERIMENT)  # opens and migrates the store
    start = time.perf_counter()
    for i in range(sizes.runs):
        with triptych.start_run(experiment=EXPERIMENT):
            triptych.log_params({"alpha": i % 7, "solver": "lbfgs"})
            triptych.log_metric("m1", float(i))
            triptych.log_metric("m2", i * 0.5)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "value": sizes.runs / seconds}


def _triptych_search(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import triptych

    client = triptych.Client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    _check(experiment is not None, "triptych: run the 'runs' workload first")
    assert experiment is not None

    def search() -> list[float]:
        page = client.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string=sizes.filter_string,
            order_by=ORDER_BY,
            max_results=1000,
        )
        return [run.metrics["m1"] for run in page.items]

    return _time_search(search, sizes)


def _mlflow_setup(workdir: Path) -> str:
    """Point MLflow at a SQLite file in ``workdir``; returns the benchmark experiment's id."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    found = mlflow.get_experiment_by_name(EXPERIMENT)  # creates and migrates the database
    if found is not None:
        experiment_id = str(found.experiment_id)
    else:
        experiment_id = mlflow.create_experiment(
            EXPERIMENT, artifact_location=(workdir / "mlartifacts").as_uri()
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _mlflow_log_metric(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import mlflow

    _mlflow_setup(workdir)
    with mlflow.start_run() as run:
        start = time.perf_counter()
        for i in range(sizes.metrics):
            mlflow.log_metric(METRIC_KEY, i * 0.001, step=i)  # synchronous: written on return
        seconds = time.perf_counter() - start
    stored = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, METRIC_KEY))
    _check(stored == sizes.metrics, f"mlflow stored {stored} of {sizes.metrics} points")
    return {"seconds": seconds, "value": sizes.metrics / seconds}


def _mlflow_runs(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import mlflow

    _mlflow_setup(workdir)
    start = time.perf_counter()
    for i in range(sizes.runs):
        with mlflow.start_run():
            mlflow.log_params({"alpha": i % 7, "solver": "lbfgs"})
            mlflow.log_metric("m1", float(i))
            mlflow.log_metric("m2", i * 0.5)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "value": sizes.runs / seconds}


def _mlflow_search(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    import mlflow

    experiment_id = _mlflow_setup(workdir)
    client = mlflow.MlflowClient()

    def search() -> list[float]:
        runs = client.search_runs(
            experiment_ids=[experiment_id],
            filter_string=sizes.filter_string,
            order_by=ORDER_BY,
            max_results=1000,
        )
        return [run.data.metrics["m1"] for run in runs]

    return _time_search(search, sizes)


def _time_search(search: Callable[[], list[float]], sizes: Sizes) -> dict[str, Any]:
    """One warm-up call, then the median of ``sizes.repeats`` timed calls, in ms."""
    found = search()
    expected = [float(v) for v in range(sizes.threshold - 1, -1, -1)]
    _check(found == expected, f"search returned {len(found)} runs, not the expected order")
    times = []
    for _ in range(sizes.repeats):
        start = time.perf_counter()
        search()
        times.append((time.perf_counter() - start) * 1000)
    return {"value": statistics.median(times), "samples": times, "matched": len(found)}


_WORKERS: dict[tuple[str, str], Callable[[Path, Sizes], dict[str, Any]]] = {
    ("triptych", "log_metric"): _triptych_log_metric,
    ("triptych", "runs"): _triptych_runs,
    ("triptych", "search"): _triptych_search,
    ("mlflow", "log_metric"): _mlflow_log_metric,
    ("mlflow", "runs"): _mlflow_runs,
    ("mlflow", "search"): _mlflow_search,
}


def worker_main(tool: str, workload: str, workdir: Path, sizes: Sizes) -> None:
    if tool == "triptych":  # before the first triptych call resolves its settings
        os.environ["TRIPTYCH_HOME"] = str(workdir / "home")
    result = _WORKERS[tool, workload](workdir, sizes)
    print(RESULT_MARKER + json.dumps(result), flush=True)


# -- the driver -----------------------------------------------------------------------------------
def tool_env(tool: str, workdir: Path) -> dict[str, str]:
    """This process's environment without either tool's settings, plus a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIPTYCH_", "MLFLOW_"))}
    env["DO_NOT_TRACK"] = "true"  # no usage telemetry from either tool
    if tool == "triptych":
        env["TRIPTYCH_HOME"] = str(workdir / "home")
    else:
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def run_worker(
    script: Path, tool: str, workload: str, workdir: Path, quick: bool
) -> dict[str, Any]:
    """Run one workload of one tool in a new process; returns what the worker printed."""
    cmd = [sys.executable, str(script), "--worker", tool, workload]
    cmd += ["--dir", str(workdir), *(["--quick"] if quick else [])]
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=tool_env(tool, workdir),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise BenchmarkError(f"{tool} {workload} worker ran over {WORKER_TIMEOUT} s") from e
    if proc.returncode == 0:
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_MARKER):
                result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                return result
    raise BenchmarkError(
        f"{tool} {workload} worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def cli_command(tool: str) -> list[str]:
    """The tool's console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / tool
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "triptych.cli.main" if tool == "triptych" else "mlflow"]


def time_help(tool: str, workdir: Path, repeats: int) -> dict[str, Any]:
    """Median wall time of ``TOOL --help`` in a new process, after one warm-up run."""
    cmd = [*cli_command(tool), "--help"]
    env = tool_env(tool, workdir)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchmarkError(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-2000:]}")
        if i > 0:
            times.append(elapsed)
    return {"value": statistics.median(times), "samples": times, "command": " ".join(cmd)}


def mlflow_version() -> str | None:
    """MLflow's version when ``import mlflow`` works here (checked in a subprocess)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import mlflow; print(mlflow.__version__)"],
        env=tool_env("mlflow", Path.cwd()),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if proc.returncode == 0 and lines else None


def triptych_version() -> str:
    from _machine import triptych_version as version  # beside this script (see _machine.py)

    return version(untracked="no")


def measure_tool(tool: str, sizes: Sizes, quick: bool) -> dict[str, dict[str, Any]]:
    """Every workload of one tool, each on fresh storage in a new temporary folder."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as root:
        # Workers run a copy of this script outside any git checkout: both tools record the
        # git state of the running script (triptych also its uncommitted diff), and the
        # figures must not depend on the state of the developer's working tree.
        script = Path(root, "benchmark_worker.py")
        shutil.copyfile(__file__, script)
        folders = {name: Path(root, name) for name in ("log_metric", "runs", "help")}
        for folder in folders.values():
            folder.mkdir()
        _progress(f"{tool}: {sizes.metrics:,} log_metric calls")
        results["log_metric"] = run_worker(script, tool, "log_metric", folders["log_metric"], quick)
        _progress(f"{tool}: {sizes.runs:,} runs")
        results["runs"] = run_worker(script, tool, "runs", folders["runs"], quick)
        _progress(f"{tool}: search_runs over {sizes.runs:,} runs")
        results["search"] = run_worker(script, tool, "search", folders["runs"], quick)
        _progress(f"{tool}: --help")
        results["help"] = time_help(tool, folders["help"], sizes.repeats)
    return results


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def build_rows(
    triptych: dict[str, dict[str, Any]], mlflow: dict[str, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    rows = []
    for m in MEASURES:
        ours = float(triptych[m.key]["value"])
        theirs = float(mlflow[m.key]["value"]) if mlflow else None
        ratio = None
        if theirs is not None:
            ratio = ours / theirs if m.higher_is_better else theirs / ours
        met: bool | None = None
        if m.target_max is not None:
            met = ours <= m.target_max
        elif m.target_ratio is not None and ratio is not None:
            met = ratio >= m.target_ratio
        rows.append(
            {
                **asdict(m),
                "triptych": ours,
                "mlflow": theirs,
                "ratio": ratio,
                "met": met,
            }
        )
    return rows


def machine_info() -> dict[str, Any]:
    from _machine import machine_info as info  # beside this script (see _machine.py)

    return info()


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("metrics/s", "runs/s"):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if unit == "ms":
        return f"{value:,.1f}"
    return f"{value:.3f}"


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("yes" if met else "NO")


def print_report(report: dict[str, Any]) -> None:
    headers = ["measure", "unit", "triptych", "MLflow", "ratio", "target", "met"]
    lines = [
        [
            row["label"],
            row["unit"],
            _fmt(row["triptych"], row["unit"]),
            _fmt(row["mlflow"], row["unit"]),
            "-" if row["ratio"] is None else f"{row['ratio']:,.1f}x",
            row["target"],
            _verdict(row["met"]),
        ]
        for row in report["rows"]
    ]
    sizes = report["sizes"]
    title = (
        f"triptych {report['triptych_version']} vs "
        + (f"MLflow {report['mlflow_version']}" if report["mlflow_version"] else "(no MLflow)")
        + f" — SQLite, {sizes['metrics']:,} metrics, {sizes['runs']:,} runs"
        + (" (--quick)" if report["quick"] else "")
    )
    machine = report["machine"]
    notes = [
        "ratio > 1 means triptych is better (throughput: triptych/MLflow; time: MLflow/triptych)",
        f"search: {sizes['filter_string']!r} ordered by {sizes['order_by'][0]!r}, "
        f"median of {sizes['repeats']} after a warm-up; --help: median of {sizes['repeats']}",
        f"machine: {machine['cpus']} CPUs, {machine['processor']}, Python {machine['python']}",
    ]
    if report["mlflow_version"] is None:
        notes.insert(0, report["mlflow_missing"])
    from _report import print_tables  # beside this script (see _machine.py)

    print_tables(title, [[headers, *lines]], notes, right=lambda i: 2 <= i <= 4, width=120)


def run_benchmark(quick: bool, with_mlflow: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    version = mlflow_version() if with_mlflow else None
    missing = None
    if not with_mlflow:
        missing = "MLflow skipped (--no-mlflow): triptych figures only"
    elif version is None:
        missing = f"mlflow is not installed for {sys.executable}: triptych figures only"
    if missing:
        _progress(missing)
    ours = measure_tool("triptych", sizes, quick)
    theirs = measure_tool("mlflow", sizes, quick) if version else None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "sizes": {**asdict(sizes), "filter_string": sizes.filter_string, "order_by": ORDER_BY},
        "triptych_version": triptych_version(),
        "mlflow_version": version,
        "mlflow_missing": missing,
        "machine": machine_info(),
        "rows": build_rows(ours, theirs),
        "raw": {"triptych": ours, "mlflow": theirs},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the report as JSON instead of a table; with FILE, write it there too",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="measure triptych alone")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    if args.worker:
        tool, workload = args.worker
        if tool not in TOOLS or workload not in WORKLOADS or args.dir is None:
            parser.error("--worker needs a TOOL, a WORKLOAD and --dir")
        worker_main(tool, workload, args.dir, sizes)
        return 0

    try:
        report = run_benchmark(args.quick, with_mlflow=not args.no_mlflow)
    except BenchmarkError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    from _report import emit  # beside this script (see _machine.py)

    emit(report, args.json, lambda: print_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
