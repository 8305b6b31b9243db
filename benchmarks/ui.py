"""The web UI's runs page at 10,000 runs: how long the server takes to answer it.

    python benchmarks/ui.py [--runs 10000] [--repeat 15] [--keep DIR]

Creates an experiment of N runs in a fresh SQLite store (each with 4 params, 3 metrics and
a 2-tag set, written through the store's batch paths: one ``create_run`` carrying the params
and tags, one ``finish_run`` carrying the metrics), then times the runs page, 50 runs a page,
in the shapes a person uses: newest first, sorted by a metric, filtered by a metric and a
param, the next page through its token, and the last page of a metric sort (the deepest
offset). Each is timed two ways: inside the app (the ASGI
call, no network: the server's time) and over HTTP against uvicorn on 127.0.0.1. Prints the
median and the 90th percentile of ``--repeat`` requests after one warm-up request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 300.0


def populate(store: Any, runs: int, seed: int = 0) -> str:
    """An experiment ``bench`` with ``runs`` finished runs; returns its id."""
    from triptych.store.entities import Metric, RunSpec, RunStatus

    rng = random.Random(seed)
    experiment = store.create_experiment("bench")
    models = ("Ridge", "Lasso", "ElasticNet", "RandomForest")
    for i in range(runs):
        model = models[i % len(models)]
        alpha = round(rng.uniform(0.01, 10), 4)
        spec = RunSpec(
            experiment,
            name=f"{model.lower()}-{i}",
            params={
                "model": model,
                "alpha": str(alpha),
                "seed": str(i % 7),
                "features": str(rng.choice((8, 10, 12))),
            },
            tags={"team": "clinic", "sweep": str(i // 1000)},
            start_time=1_700_000_000_000 + i * 1000,
        )
        run = store.create_run(spec)
        mse = 3000 + rng.gauss(300, 120)
        store.finish_run(
            run.run_id,
            RunStatus.FINISHED,
            end_time=spec.start_time + 800,
            metrics=[
                Metric("mse", mse, 0, spec.start_time + 500),
                Metric("r2", 1 - mse / 6000, 0, spec.start_time + 500),
                Metric("fit_s", rng.uniform(0.1, 3), 0, spec.start_time + 500),
            ],
        )
    return str(experiment)


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
    }


async def _in_app(app: Any, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    import httpx

    out: dict[str, list[float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for name, path in paths.items():
            assert (await client.get(path)).status_code == 200, path
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            out[name] = times
    return out


def _over_http(url: str, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    import httpx

    out: dict[str, list[float]] = {}
    with httpx.Client(base_url=url) as client:
        for name, path in paths.items():
            assert client.get(path).status_code == 200, path
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            out[name] = times
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="build the store in this folder and keep it")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    import httpx

    from triptych.server.app import create_app
    from triptych.store.sql.store import SqlStore
    from triptych.testing.server import LiveServer

    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine_info, triptych_version

    folder = args.keep or Path(tempfile.mkdtemp(prefix="triptych-ui-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'store.db'}"
    store = SqlStore(url)
    existing = store.get_experiment_by_name("bench")
    start = time.perf_counter()
    experiment = existing.experiment_id if existing else populate(store, args.runs)
    created_s = time.perf_counter() - start
    base = f"/ui/experiments/{experiment}/runs"
    first = store.search_runs([experiment], max_results=50)
    last_token = None  # the token of the last page sorted by a metric: the deepest offset
    token: str | None = None
    while True:
        page = store.search_runs(
            [experiment], order_by=["metrics.mse ASC"], max_results=50, page_token=token
        )
        if page.next_page_token is None:
            break
        last_token = token = page.next_page_token
    paths = {
        "newest first": base,
        "sorted by metrics.mse": f"{base}?order=metrics.mse+ASC",
        "filtered (metric + param), sorted": (
            f"{base}?filter=metrics.mse+%3C+3300+and+params.model+%3D+%27Ridge%27"
            "&order=metrics.r2+DESC"
        ),
        "next page (token)": f"{base}?page_token={first.next_page_token}",
        "last page, sorted by metrics.mse": (
            f"{base}?order=metrics.mse+ASC&page_token={last_token}"
        ),
    }
    app = create_app(store)
    in_app = asyncio.run(_in_app(app, paths, args.repeat))
    with LiveServer(store) as server:
        http = _over_http(server.url, paths, args.repeat)
        rows = len(httpx.get(server.url + base).text.split('name="run"')) - 1
    store.close()
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)

    figures = {
        "runs": args.runs,
        "rows_on_page": rows,
        "populate_s": round(created_s, 1) if not existing else None,
        "pages": {
            name: {"in_app": _stats(in_app[name]), "http": _stats(http[name])} for name in paths
        },
        "target_ms": TARGET_MS,
        "machine": machine_info(),
        "triptych": triptych_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return figures
    print(f"runs page over {args.runs:,} runs, {rows} rows a page, median / p90 of {args.repeat}")
    if not existing:
        print(f"(created the runs in {created_s:.1f} s, {args.runs / created_s:,.0f} runs/s)")
    print(f"{'page':<36} {'server (ASGI) ms':>18} {'HTTP loopback ms':>18}")
    worst = 0.0
    for name in paths:
        a, h = figures["pages"][name]["in_app"], figures["pages"][name]["http"]
        worst = max(worst, a["median_ms"])
        print(
            f"{name:<36} {a['median_ms']:>8.1f} / {a['p90_ms']:<7.1f}  "
            f"{h['median_ms']:>8.1f} / {h['p90_ms']:<7.1f}"
        )
    verdict = "meets" if worst <= TARGET_MS else "MISSES"
    print(f"slowest median server time {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    info = figures["machine"]
    print(
        f"machine: {info['processor']}, {info['cpus']} CPUs, Python {info['python']}, "
        f"{info['platform']}; triptych {figures['triptych']}; {figures['date']}"
    )
    return figures


if __name__ == "__main__":
    main()
