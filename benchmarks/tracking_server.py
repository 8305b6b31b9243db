"""Remote tracking benchmark: triptych's client against ``triptych server``, MLflow's client
against ``mlflow server``, side by side, each server over a fresh SQLite file on local disk.

Workloads, each in a fresh client process (the script re-invokes itself with ``--worker``):

1. ``log_metric``: per-call ``log_metric(key, value, step=i)`` in one run, the way a training
   loop logs. The clock stops when the points are in the server's database: for triptych after
   ``triptych.flush()`` (its writer thread batches the calls), for MLflow after the last call
   (one synchronous request per call). Reported in metrics/s.
2. ``sync_call``: one metric per synchronous store call, no batching on either side:
   ``HttpStore.log_batch(run, [metric])`` vs ``MlflowClient().log_metric``. The round-trip
   cost of one request. Reported in ms per call (median of the calls).
3. ``runs``: runs through the fluent API (``start_run`` block, ``log_params`` with 2 params,
   ``log_metric`` x2). Reported in runs/s.
4. ``search``: ``search_runs`` over those runs, ``metrics.m1 < N/2`` ordered by
   ``metrics.m1 DESC``; median of 5 after a warm-up. Reported in ms.

A third column, "MLflow → triptych", runs MLflow's client (the same ``_mlflow`` workloads)
against ``triptych server``'s MLflow-compatible API (docs/mlflow.md): what a team gets by
pointing ``MLFLOW_TRACKING_URI`` at triptych without changing its code.

Both servers run one worker process on 127.0.0.1. MLflow runs from its own interpreter
(``--mlflow-python``, e.g. a virtual environment with ``pip install mlflow``); without one,
triptych's figures are printed alone::

    python benchmarks/tracking_server.py --mlflow-python /tmp/mlflowvenv/bin/python
    python benchmarks/tracking_server.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXPERIMENT = "benchmark"
RESULT = "BENCHMARK-RESULT "
# Counts per tool: MLflow's per-call requests take tens of ms, so it logs fewer points; those
# figures are rates or medians, so the counts only set how long the run takes. Both create the
# same number of runs, which the search then covers.
SIZES = {
    "full": {"triptych": {"metrics": 20_000, "calls": 2_000, "runs": 300},
             "mlflow": {"metrics": 500, "calls": 300, "runs": 300}},
    "quick": {"triptych": {"metrics": 2_000, "calls": 300, "runs": 60},
              "mlflow": {"metrics": 100, "calls": 60, "runs": 60}},
}  # fmt: skip


# -- workers: run in their own process against a running server ------------------------------
def _triptych(workload: str, url: str, n: dict[str, int]) -> dict[str, Any]:
    import triptych
    from triptych.store.entities import Metric, RunSpec
    from triptych.store.http.client import HttpStore

    os.environ["TRIPTYCH_TRACKING_URI"] = url
    if workload == "log_metric":
        with triptych.start_run(experiment=EXPERIMENT) as run:
            start = time.perf_counter()
            for i in range(n["metrics"]):
                triptych.log_metric("loss", i * 0.001, step=i)
            triptych.flush()
            seconds = time.perf_counter() - start
        stored = len(triptych.Client().get_metric_history(run.run_id, "loss"))
        assert stored == n["metrics"], f"stored {stored} of {n['metrics']}"
        return {"value": n["metrics"] / seconds, "seconds": seconds}
    if workload == "sync_call":
        store = HttpStore(url)
        run_id = store.create_run(RunSpec(store.get_or_create_experiment("sync").experiment_id))
        times = []
        for i in range(n["calls"]):
            start = time.perf_counter()
            store.log_batch(run_id.run_id, [Metric("m", float(i), i, 0)])
            times.append((time.perf_counter() - start) * 1000)
        return {"value": statistics.median(times), "p90": statistics.quantiles(times, n=10)[-1]}
    if workload == "runs":
        start = time.perf_counter()
        for i in range(n["runs"]):
            with triptych.start_run(experiment=EXPERIMENT):
                triptych.log_params({"alpha": i % 7, "solver": "lbfgs"})
                triptych.log_metric("m1", float(i))
                triptych.log_metric("m2", i * 0.5)
        return {"value": n["runs"] / (time.perf_counter() - start)}
    client = triptych.Client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None

    def search() -> int:
        page = client.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string=f"metrics.m1 < {n['runs'] // 2}",
            order_by=["metrics.m1 DESC"],
            max_results=1000,
        )
        return len(page.items)  # the log_metric run has no m1: not matched

    return _median_ms(search, n["runs"] // 2)


def _mlflow(workload: str, url: str, n: dict[str, int]) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(EXPERIMENT)
    client = mlflow.MlflowClient()
    if workload == "log_metric":
        with mlflow.start_run() as run:
            start = time.perf_counter()
            for i in range(n["metrics"]):
                mlflow.log_metric("loss", i * 0.001, step=i)
            seconds = time.perf_counter() - start
        stored = len(client.get_metric_history(run.info.run_id, "loss"))
        assert stored == n["metrics"], f"stored {stored} of {n['metrics']}"
        return {"value": n["metrics"] / seconds, "seconds": seconds}
    if workload == "sync_call":
        run_id = client.create_run(mlflow.get_experiment_by_name(EXPERIMENT).experiment_id)
        times = []
        for i in range(n["calls"]):
            start = time.perf_counter()
            client.log_metric(run_id.info.run_id, "m", float(i), step=i)
            times.append((time.perf_counter() - start) * 1000)
        return {"value": statistics.median(times), "p90": statistics.quantiles(times, n=10)[-1]}
    if workload == "runs":
        start = time.perf_counter()
        for i in range(n["runs"]):
            with mlflow.start_run():
                mlflow.log_params({"alpha": i % 7, "solver": "lbfgs"})
                mlflow.log_metric("m1", float(i))
                mlflow.log_metric("m2", i * 0.5)
        return {"value": n["runs"] / (time.perf_counter() - start)}
    experiment_id = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id

    def search() -> int:
        return len(
            client.search_runs(
                [experiment_id],
                filter_string=f"metrics.m1 < {n['runs'] // 2}",
                order_by=["metrics.m1 DESC"],
                max_results=1000,
            )
        )

    return _median_ms(search, n["runs"] // 2)


def _median_ms(search: Any, expected: int) -> dict[str, Any]:
    assert search() == expected, "search returned the wrong number of runs"
    times = []
    for _ in range(5):
        start = time.perf_counter()
        search()
        times.append((time.perf_counter() - start) * 1000)
    return {"value": statistics.median(times)}


# -- the driver ---------------------------------------------------------------------------------
WORKLOADS = ("log_metric", "sync_call", "runs", "search")
UNITS = {"log_metric": "metrics/s", "sync_call": "ms/call", "runs": "runs/s", "search": "ms"}
HIGHER_IS_BETTER = {"log_metric": True, "sync_call": False, "runs": True, "search": False}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIPTYCH_", "MLFLOW_"))}
    env["DO_NOT_TRACK"] = "true"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _start_server(tool: str, python: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    db = f"sqlite:///{folder / f'{tool}.db'}"
    if tool == "triptych":
        cmd = [python, "-m", "triptych", "server", "--port", str(port), "--store", db,
               "--artifacts", str(folder / "artifacts")]  # fmt: skip
    else:
        cmd = [python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", db, "--default-artifact-root", str(folder / "mlartifacts"),
               "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(
        cmd, cwd=folder, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(0.5 if tool == "mlflow" else 0)
                return process, url
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"{tool} server exited with {process.returncode}") from None
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{tool} server did not start")


def measure(
    tool: str, python: str, sizes: dict[str, int], server: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Run every workload of ``tool``'s client (in ``python``) against ``server`` (its tool
    and interpreter; by default the tool's own server)."""
    results: dict[str, Any] = {}
    server_tool, server_python = server or (tool, python)
    with tempfile.TemporaryDirectory(prefix=f"bench-server-{tool}-") as root:
        process, url = _start_server(server_tool, server_python, Path(root))
        try:
            for workload in WORKLOADS:
                print(f"... {tool}: {workload}", file=sys.stderr, flush=True)
                done = subprocess.run(
                    [python, __file__, "--worker", tool, workload, url, json.dumps(sizes)],
                    cwd=root, env=_clean_env(), capture_output=True, text=True, check=False,
                )  # fmt: skip
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT)]
                if done.returncode != 0 or not lines:
                    raise SystemExit(f"{tool} {workload} failed:\n{done.stderr[-3000:]}")
                results[workload] = json.loads(lines[-1][len(RESULT) :])
        finally:
            process.terminate()
            process.wait(timeout=60)
    return results


def _shown(value: float | None) -> str:
    return f"{value:,.2f}" if value is not None else "-"


def _ratio(workload: str, ours: float | None, theirs: float | None) -> str:
    """How many times better ``ours`` is than ``theirs`` (either way round by the unit)."""
    if not ours or not theirs:
        return "-"
    return f"{(ours / theirs if HIGHER_IS_BETTER[workload] else theirs / ours):,.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mlflow-python", help="an interpreter with MLflow installed")
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, workload, url, sizes = args.worker
        run = _triptych if tool == "triptych" else _mlflow
        print(RESULT + json.dumps(run(workload, url, json.loads(sizes))), flush=True)
        return
    sizes = SIZES["quick" if args.quick else "full"]
    report: dict[str, Any] = {"triptych": measure("triptych", sys.executable, sizes["triptych"])}
    if args.mlflow_python:
        report["mlflow"] = measure("mlflow", args.mlflow_python, sizes["mlflow"])
        report["mlflow_on_triptych"] = measure(
            "mlflow", args.mlflow_python, sizes["mlflow"], server=("triptych", sys.executable)
        )
    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine_info, triptych_version

    report["machine"] = machine_info()
    report["triptych_version"] = triptych_version(untracked="no")
    print(f"\ntriptych {report['triptych_version']} · {report['machine']}")
    print(
        f"{'measure':<12} {'unit':<10} {'triptych':>12} {'MLflow':>12} {'ratio':>10}"
        f" {'MLflow→triptych':>16} {'vs MLflow':>10}"
    )
    for w in WORKLOADS:
        ours = report["triptych"][w]["value"]
        theirs = report.get("mlflow", {}).get(w, {}).get("value")
        compat = report.get("mlflow_on_triptych", {}).get(w, {}).get("value")
        print(
            f"{w:<12} {UNITS[w]:<10} {ours:>12,.2f} {_shown(theirs):>12}"
            f" {_ratio(w, ours, theirs):>10} {_shown(compat):>16} {_ratio(w, compat, theirs):>10}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
