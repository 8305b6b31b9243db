"""Pipelines benchmark: cached re-runs of the diabetes pipeline (against DVC), and a Ray fan-out.

Workloads (each triptych measure in a fresh subprocess with its own ``TRIPTYCH_HOME``, on a
copy of ``examples/diabetes`` placed in a temporary folder outside any git checkout):

1. ``cached``: in one process, ``triptych.pipelines.load(path)`` (timed: "loading", which is
   mostly the pipeline file's own imports of pandas and scikit-learn), the stores opened
   (timed), one cold run (every step a miss), then N unchanged runs: every step must be a hit,
   and the median and max of ``run()`` are the overhead beyond loading (target < 0.5 s).
   Then one run with ``train.alpha`` changed: train, evaluate and register must re-run and
   the other three be hits.
2. ``fresh``: a new process over that same home: loading, opening the stores, and the first
   cached ``run()`` of the process (its module-level caches are empty), timed apart.
3. Whole commands from process start: ``python -m triptych pipeline run pipeline.py`` cold
   (the store already created), cached (median of N), and after editing ``train.alpha`` in
   ``params.yaml``; with DVC (``--dvc PATH``, or ``dvc`` on ``PATH``) the same for
   ``dvc repro`` of an equivalent 6-stage ``dvc.yaml`` in a temporary git repository (each
   stage a small script doing the step's work with the same interpreter's pandas/sklearn).
4. Fan-out: a generated pipeline of 8 independent ``@step(cache=False)`` steps that each
   ``time.sleep(1)``. On a local Ray runtime started with ``num_cpus=2`` (``ray.init`` timed
   apart): the run on the cold runtime (no worker process started yet) and a second run on
   the warm one, with the default ``num_cpus=1`` per step (floor: 4 s) and with
   ``num_cpus=0.25`` (floor: 1 s); each variant in its own process and runtime. The local
   executor with ``workers=2`` and ``workers=8`` for reference.

Every step's cache state is checked, so a figure can never come from a run that did other
work than described. Workers get the environment without ``TRIPTYCH_*``, ``DVC_*`` or
``RAY_ADDRESS``, with telemetry off; DVC's repository has ``core.analytics`` and
``core.check_update`` off.

    python benchmarks/pipelines.py                       # full run, 2 to 3 minutes
    python benchmarks/pipelines.py --dvc /tmp/dvcvenv/bin/dvc
    python benchmarks/pipelines.py --quick               # fewer repeats, no num_cpus=0.25
    python benchmarks/pipelines.py --json [FILE]         # JSON on stdout (or the table + FILE)
    python benchmarks/pipelines.py --no-ray

Ratios are normalised so that a ratio above 1 means triptych is better (DVC's time divided
by triptych's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes"
STEPS = ("ingest", "validate", "split", "train", "evaluate", "register")
DOWNSTREAM_OF_ALPHA = {"train", "evaluate", "register"}
ALPHA = 0.5  # the value in params.yaml
RESULT_MARKER = "BENCHMARK-RESULT "
WORKER_TIMEOUT = 900
FANOUT_STEPS = 8
FANOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Sizes:
    repeats: int  # unchanged in-process runs after the cold one
    cli_repeats: int  # unchanged whole-command runs (median)
    quarter_cpu: bool  # also the fan-out with @step(num_cpus=0.25)


FULL = Sizes(repeats=5, cli_repeats=5, quarter_cpu=True)
QUICK = Sizes(repeats=3, cli_repeats=2, quarter_cpu=False)


class BenchmarkError(RuntimeError):
    """A worker failed, or a run did other work than the benchmark describes."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


def _caches(result: Any) -> dict[str, str]:
    return {name: state.cache for name, state in result.steps.items()}


def _expect(caches: dict[str, str], expected: dict[str, str], what: str) -> None:
    _check(caches == expected, f"{what}: steps were {caches}, expected {expected}")


ALL_MISS = dict.fromkeys(STEPS, "miss")
ALL_HIT = dict.fromkeys(STEPS, "hit")
ALPHA_CHANGED = {s: "miss" if s in DOWNSTREAM_OF_ALPHA else "hit" for s in STEPS}


# -- workers: run in their own process, print one result line ------------------------------------
def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _open_stores() -> float:
    from triptych.tracking import fluent

    client = fluent._client()
    seconds, _ = _timed(lambda: (client.store, client.artifacts))
    return seconds


def worker_cached(workdir: Path, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    import triptych.pipelines as tp

    load_s, pipe = _timed(lambda: tp.load(workdir / "pipeline.py"))
    open_s = _open_stores()
    cold_s, cold = _timed(lambda: tp.run(pipe))
    _expect(_caches(cold), ALL_MISS, "cold run")
    cached = []
    for i in range(sizes.repeats):
        seconds, result = _timed(lambda: tp.run(pipe))
        _expect(_caches(result), ALL_HIT, f"unchanged run {i + 1}")
        cached.append(seconds)
    alpha_s, changed = _timed(lambda: tp.run(pipe, params={"train.alpha": ALPHA + 0.2}))
    _expect(_caches(changed), ALPHA_CHANGED, "run with train.alpha changed")
    return {
        "load": load_s,
        "open_stores": open_s,
        "cold": cold_s,
        "cold_steps": {n: s.duration for n, s in cold.steps.items()},
        "cached": cached,
        "cached_median": statistics.median(cached),
        "cached_max": max(cached),
        "alpha_changed": alpha_s,
    }


def worker_fresh(workdir: Path, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    import triptych.pipelines as tp

    load_s, pipe = _timed(lambda: tp.load(workdir / "pipeline.py"))
    open_s = _open_stores()
    first_s, first = _timed(lambda: tp.run(pipe))
    _expect(_caches(first), ALL_HIT, "first run of a fresh process")
    second_s, second = _timed(lambda: tp.run(pipe))
    _expect(_caches(second), ALL_HIT, "second run of a fresh process")
    return {"load": load_s, "open_stores": open_s, "first": first_s, "second": second_s}


FANOUT_FILE = '''"""{n} independent steps that sleep {seconds} s each (they use no CPU)."""

import time

from triptych.pipelines import pipeline, step


@step(cache=False, num_cpus={num_cpus})
def nap(i: int) -> dict:
    time.sleep({seconds})
    return {{"i": i}}


@pipeline
def fanout() -> None:
    for i in range({n}):
        nap(i)
'''


def write_fanout(folder: Path, num_cpus: float) -> Path:
    path = folder / "fanout.py"
    text = FANOUT_FILE.format(n=FANOUT_STEPS, seconds=FANOUT_SECONDS, num_cpus=num_cpus)
    path.write_text(text, encoding="utf-8")
    return path


def _fanout_run(path: Path, **options: Any) -> dict[str, Any]:
    """Wall time of one fan-out run, and each step's own time (in its worker, from the
    task's start: for a worker's first task that includes importing the pipeline file)."""
    import triptych.pipelines as tp

    seconds, result = _timed(lambda: tp.run(path, cache=False, **options))
    caches = set(_caches(result).values())
    _check(len(result.steps) == FANOUT_STEPS and caches == {"off"}, f"fan-out ran {caches}")
    return {"seconds": seconds, "steps": sorted(s.duration for s in result.steps.values())}


def worker_ray(workdir: Path, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    import ray

    path = write_fanout(workdir, args.num_cpus)
    _open_stores()
    init_s, _ = _timed(
        lambda: ray.init(
            address="local",  # a runtime of our own, never one another process started
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
        )
    )
    try:
        cold = _fanout_run(path, executor="ray", experiment="ray")
        warm = _fanout_run(path, executor="ray", experiment="ray")
    finally:
        ray.shutdown()
    return {
        "num_cpus": args.num_cpus,
        "init": init_s,
        "cold": cold["seconds"],
        "warm": warm["seconds"],
        "cold_steps": cold["steps"],
        "warm_steps": warm["steps"],
    }


def worker_local(workdir: Path, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    path = write_fanout(workdir, 1)
    _open_stores()
    out: dict[str, Any] = {}
    for n in (2, 8):
        run = _fanout_run(path, workers=n, experiment=f"local-{n}")
        out[f"workers_{n}"], out[f"workers_{n}_steps"] = run["seconds"], run["steps"]
    return out


WORKERS = {
    "cached": worker_cached,
    "fresh": worker_fresh,
    "ray": worker_ray,
    "local": worker_local,
}


def worker_main(kind: str, workdir: Path, sizes: Sizes, args: argparse.Namespace) -> None:
    os.environ["TRIPTYCH_HOME"] = str(workdir / "home")  # before triptych resolves settings
    result = WORKERS[kind](workdir, sizes, args)
    print(RESULT_MARKER + json.dumps(result), flush=True)


# -- the driver -----------------------------------------------------------------------------------
def clean_env(home: Path | None = None) -> dict[str, str]:
    """This process's environment without triptych's, DVC's or Ray's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRIPTYCH_", "DVC_")) and k != "RAY_ADDRESS"
    }
    env["DO_NOT_TRACK"] = "true"
    env["DVC_NO_ANALYTICS"] = "1"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if home is not None:
        env["TRIPTYCH_HOME"] = str(home)
    return env


def run_worker(script: Path, kind: str, workdir: Path, quick: bool, *extra: str) -> dict[str, Any]:
    """Run one workload in a new process; returns what the worker printed."""
    cmd = [sys.executable, str(script), "--worker", kind, "--dir", str(workdir), *extra]
    cmd += ["--quick"] if quick else []
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=clean_env(workdir / "home"),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise BenchmarkError(f"{kind} worker ran over {WORKER_TIMEOUT} s") from e
    if proc.returncode == 0:
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_MARKER):
                result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                return result
    raise BenchmarkError(f"{kind} worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def timed_command(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall time of a whole command, from process start; returns it and the output."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchmarkError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def set_alpha(params: Path, alpha: float) -> None:
    text = params.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^(\s+alpha:\s*)\S+", rf"\g<1>{alpha}", text)
    _check(n == 1, f"no train.alpha in {params}")
    params.write_text(new, encoding="utf-8")


def measure_triptych_cli(folder: Path, sizes: Sizes) -> dict[str, Any]:
    """``python -m triptych pipeline run`` cold, cached (median) and with alpha changed."""
    env = clean_env(folder / "home")
    # the store is created and migrated before the clock starts, as `dvc init` is for DVC
    subprocess.run(
        [sys.executable, "-c", "import triptych; c = triptych.Client(); c.store; c.artifacts"],
        cwd=folder,
        env=env,
        check=True,
    )
    cmd = [sys.executable, "-m", "triptych", "pipeline", "run", "pipeline.py", "--json"]

    def run(expected: dict[str, str], what: str) -> float:
        seconds, out = timed_command(cmd, folder, env)
        report, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
        steps = report["steps"]
        _expect({s["name"]: s["cache"] for s in steps}, expected, f"triptych CLI, {what}")
        return seconds

    cold = run(ALL_MISS, "cold run")
    cached = [run(ALL_HIT, "unchanged run") for _ in range(sizes.cli_repeats)]
    set_alpha(folder / "params.yaml", ALPHA + 0.2)
    changed = run(ALPHA_CHANGED, "train.alpha changed")
    return {
        "command": "python -m triptych pipeline run pipeline.py --json",
        "cold": cold,
        "cached": cached,
        "cached_median": statistics.median(cached),
        "alpha_changed": changed,
    }


# -- DVC: the same six steps as stages (_pipelines_dvc.py) ------------------------------------
def build_dvc_repo(folder: Path, dvc: str) -> None:
    """A git repository with ``dvc init``, params.yaml, the stage scripts and dvc.yaml."""
    from _pipelines_dvc import write_project  # beside this script (see _machine.py)

    write_project(folder, EXAMPLE / "params.yaml", sys.executable)
    env = clean_env()
    for cmd in (
        ["git", "init", "-q"],
        [dvc, "init", "-q"],
        [dvc, "config", "core.analytics", "false"],
        [dvc, "config", "core.check_update", "false"],
    ):
        subprocess.run(cmd, cwd=folder, env=env, check=True, capture_output=True)


def measure_dvc(folder: Path, dvc: str, sizes: Sizes) -> dict[str, Any]:
    """``dvc repro`` cold, unchanged (median) and after editing train.alpha."""
    build_dvc_repo(folder, dvc)
    env = clean_env()

    def repro(expected: set[str], what: str) -> float:
        seconds, out = timed_command([dvc, "repro"], folder, env)
        ran = set(re.findall(r"Running stage '(\w+)'", out))
        _check(ran == expected, f"dvc repro, {what}: ran {sorted(ran)}, not {sorted(expected)}")
        return seconds

    cold = repro(set(STEPS), "cold run")
    cached = [repro(set(), "unchanged run") for _ in range(sizes.cli_repeats)]
    set_alpha(folder / "params.yaml", ALPHA + 0.2)
    changed = repro(DOWNSTREAM_OF_ALPHA, "train.alpha changed")
    return {
        "command": "dvc repro",
        "cold": cold,
        "cached": cached,
        "cached_median": statistics.median(cached),
        "alpha_changed": changed,
    }


def find_dvc(given: str | None) -> tuple[str | None, str | None]:
    """The dvc executable to use and its version (None, None when there is none)."""
    dvc = given or shutil.which("dvc")
    if dvc is None:
        return None, None
    proc = subprocess.run(
        [dvc, "--version"], env=clean_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"{dvc} --version failed: {proc.stderr[-500:]}")
    return dvc, proc.stdout.strip().splitlines()[-1]


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def copy_example(folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "mlruns"))
    return folder


def run_benchmark(quick: bool, with_ray: bool, dvc_path: str | None) -> dict[str, Any]:
    from _pipelines_report import build_rows  # beside this script (see _machine.py)

    sizes = QUICK if quick else FULL
    load_before = os.getloadavg()  # other jobs on the machine move every figure here
    dvc, dvc_version = find_dvc(dvc_path)
    if dvc is None:
        _progress("dvc not found (give --dvc PATH): triptych figures only")
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        root = Path(tmp)
        # workers run a copy of this script outside any git checkout (triptych records the
        # git state of the code it runs; the figures must not depend on the working tree)
        script = root / "benchmark_worker.py"
        shutil.copyfile(__file__, script)
        api = copy_example(root / "api")
        _progress(f"triptych: load, cold run, {sizes.repeats} cached runs, train.alpha changed")
        raw["cached"] = run_worker(script, "cached", api, quick)
        _progress("triptych: the first cached run of a fresh process")
        raw["fresh"] = run_worker(script, "fresh", api, quick)
        _progress(f"triptych CLI: cold, {sizes.cli_repeats} cached, train.alpha changed")
        raw["cli"] = measure_triptych_cli(copy_example(root / "cli"), sizes)
        if dvc is not None:
            _progress(f"dvc repro: cold, {sizes.cli_repeats} cached, train.alpha changed")
            raw["dvc"] = measure_dvc(root / "dvc", dvc, sizes)
        if with_ray:
            for cpus in (1.0, 0.25) if sizes.quarter_cpu else (1.0,):
                _progress(f"fan-out on Ray, num_cpus={cpus} per step")
                folder = root / f"ray-{cpus}"
                folder.mkdir()
                raw[f"ray_{cpus}"] = run_worker(
                    script, "ray", folder, quick, "--num-cpus", str(cpus)
                )
        _progress("fan-out on the local executor, workers=2 and 8")
        (root / "local").mkdir()
        raw["local"] = run_worker(script, "local", root / "local", quick)
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "sizes": asdict(sizes),
        "triptych_version": triptych_version(),
        "dvc_version": dvc_version,
        "ray_version": _version_of("ray") if with_ray else None,
        "machine": machine_info(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "rows": build_rows(raw, (FANOUT_STEPS, FANOUT_SECONDS)),
        "raw": raw,
    }


def _version_of(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def triptych_version() -> str:
    from _machine import triptych_version as version  # beside this script (see _machine.py)

    return version()


def machine_info() -> dict[str, Any]:
    from _machine import machine_info as info  # beside this script (see _machine.py)

    return info(bytecode_cache=not sys.flags.dont_write_bytecode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the report as JSON instead of a table; with FILE, write it there too",
    )
    parser.add_argument("--no-ray", action="store_true", help="skip the fan-out on Ray")
    parser.add_argument("--dvc", metavar="PATH", help="the dvc executable (default: on PATH)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--num-cpus", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    if args.worker:
        if args.dir is None:
            parser.error("--worker needs --dir")
        worker_main(args.worker, args.dir, sizes, args)
        return 0

    try:
        report = run_benchmark(args.quick, with_ray=not args.no_ray, dvc_path=args.dvc)
    except BenchmarkError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    from _pipelines_report import print_report  # beside this script (see _machine.py)
    from _report import emit

    emit(report, args.json, lambda: print_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
