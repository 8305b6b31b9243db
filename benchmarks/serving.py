"""Serving benchmark: triptych's scoring server, ``mlflow models serve`` and a bare ASGI ceiling.

One ``Ridge(alpha=0.5)`` fitted on scikit-learn's diabetes data (the fit is deterministic, so
every process that fits it holds the same coefficients) is served by, one worker each:

- ``client floor``: a canned-answer asyncio server that parses nothing; what the client itself
  costs (its latency is the loopback round trip plus ``http.client``, its req/s the most this
  client can generate);
- ``ceiling``: a bare ASGI app under uvicorn (httptools + uvloop) that parses the body with
  orjson and calls ``predict`` on a numpy array: the ceiling of this stack on this machine;
- ``triptych``: ``triptych serve models:/diabetes@champion`` (the model logged with
  ``triptych.log_model`` and registered in a temporary ``TRIPTYCH_HOME``);
- ``MLflow``: ``mlflow models serve -m DIR --env-manager local --workers 1`` on the same model
  saved with ``mlflow.sklearn.save_model``, run from MLflow's own virtual environment.

Each server runs pinned to CPU 1 and the load generator to CPU 0 (``sched_setaffinity``), one
server at a time, in reversed order on every second repeat. Every request carries one row in
the server's own format (triptych ``{"records": [{...}]}``, MLflow ``{"dataframe_split": ...}``,
the ceiling ``{"data": [[...]]}``); every answer must be a 200 with the prediction of the
driver's own ``model.predict`` (relative tolerance 1e-6), or the benchmark fails.

Load: a warm-up, then sequential requests on one keep-alive ``http.client`` connection (p50,
p99, req/s with 1 client), then 8 concurrent keep-alive connections for a fixed time on one
asyncio loop in a client process (req/s, p50, p99 under load; ``--load threads`` uses threads
with ``http.client`` instead, which on one CPU tops out near what the servers do). The client
floor row says what the client itself can do: check it stays far above the servers.

    python benchmarks/serving.py                      # full run, ~1.5 minutes
    python benchmarks/serving.py --quick              # a few hundred requests, ~40 s
    python benchmarks/serving.py --repeat 2           # twice, second time in reverse order
    python benchmarks/serving.py --servers floor,ceiling,mlflow
    python benchmarks/serving.py --json out.json      # the table, and the JSON in out.json
    python benchmarks/serving.py --profile prof.out   # triptych alone under cProfile

Ratios are normalised so that a ratio above 1 means triptych is better (throughput:
triptych / other; latency: other / triptych).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _serving_workers import MODEL_NAME, RESULT_MARKER, fit_model, payloads  # beside this script

MODEL_URI = f"models:/{MODEL_NAME}@champion"
SERVER_CPU, CLIENT_CPU = 1, 0
READY_TIMEOUT = 180.0  # seconds; MLflow imports for a while before it listens
CEILING_MODULES = ("uvicorn", "httptools", "uvloop", "orjson", "sklearn")
SERVERS = ("floor", "ceiling", "triptych", "mlflow")
LABELS = {"floor": "client floor", "ceiling": "ceiling", "triptych": "triptych", "mlflow": "MLflow"}


@dataclass(frozen=True)
class Sizes:
    warmup: int  # sequential requests before the clock
    sequential: int  # timed sequential requests on one connection
    seconds: float  # duration of the concurrent load
    clients: int  # concurrent connections


FULL = Sizes(warmup=500, sequential=3000, seconds=5.0, clients=8)
QUICK = Sizes(warmup=50, sequential=300, seconds=1.0, clients=8)


class BenchmarkError(RuntimeError):
    """A worker or a server failed, or a server answered wrongly."""


# -- the driver -----------------------------------------------------------------------------------
@dataclass
class Server:
    """One contender: how to start it and what to send it."""

    key: str
    cmd: list[str]
    env: dict[str, str]
    path: str
    payload_file: Path
    version: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIPTYCH_", "MLFLOW_"))}
    env.update(DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def run_worker(python: str, script: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run the worker module's copy (``_serving_workers.py``); returns the JSON it printed last."""
    proc = subprocess.run(
        [python, str(script), *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_MARKER):
                result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                return result
    raise BenchmarkError(
        f"worker {args[:2]} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def _imports(python: str, modules: tuple[str, ...]) -> bool:
    code = "import " + ", ".join(modules)
    proc = subprocess.run([python, "-c", code], capture_output=True, check=False)
    return proc.returncode == 0


def start_server(server: Server, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the server on CPU ``SERVER_CPU`` in its own session; wait until it answers."""
    cmd = [part.replace("{port}", str(port)) for part in server.cmd]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
            preexec_fn=lambda: _pin(SERVER_CPU),  # inherited by the workers it spawns
        )
    body = json.loads(server.payload_file.read_text())["bodies"][0].encode()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"{server.key} exited ({proc.returncode}):\n{_tail(log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(
                "POST", server.path, body=body, headers={"Content-Type": "application/json"}
            )
            if conn.getresponse().status == 200:
                conn.close()
                return proc
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise BenchmarkError(f"{server.key} did not answer within {READY_TIMEOUT:.0f} s:\n{_tail(log)}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (uvicorn shuts down cleanly, cProfile writes its file), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def run_clients(
    python: str, script: Path, kind: str, specs: list[dict[str, Any]], env: dict[str, str]
) -> list[dict[str, Any]]:
    """One client process per spec, all at once; their results."""
    children = []
    for n, spec in enumerate(specs):
        spec["out"] = str(script.parent / f"client-{n}.json")
        children.append(
            subprocess.Popen(
                [python, str(script), "--worker", kind, json.dumps(spec)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for child, spec in zip(children, specs, strict=True):
        _, err = child.communicate()
        if child.returncode != 0:
            raise BenchmarkError(f"a client failed (exit {child.returncode}):\n{err[-3000:]}")
        results.append(json.loads(Path(spec["out"]).read_text()))
    return results


def _pct(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile in ms."""
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


def measure(
    server: Server, script: Path, sizes: Sizes, workdir: Path, procs: int, load: str
) -> dict[str, Any]:
    """Start one server, load it, stop it."""
    port = _free_port()
    log = workdir / f"{server.key}.log"
    proc = start_server(server, port, log)
    env = _clean_env()
    base = {"port": port, "path": server.path, "payloads": str(server.payload_file)}
    python = sys.executable
    try:
        spec = {**base, "threads": 1, "offset": 0, "warmup": sizes.warmup}
        seq = run_clients(python, script, "client", [{**spec, "count": sizes.sequential}], env)[0]
        start_at = time.time() + 1.5  # after every client process has connected and warmed up
        per_proc = [
            sizes.clients // procs + (1 if p < sizes.clients % procs else 0) for p in range(procs)
        ]
        specs = [
            {
                **base,
                "threads": threads,
                "offset": 1000 * p,
                "warmup": 5,
                "start_at": start_at,
                "until": start_at + sizes.seconds,
            }
            for p, threads in enumerate(per_proc)
        ]
        conc = run_clients(python, script, "load" if load == "asyncio" else "client", specs, env)
    finally:
        stop_server(proc)
    seq_ns = sorted(seq["latencies_ns"])
    conc_ns = sorted(x for c in conc for x in c["latencies_ns"])
    bad = seq["bad"] + sum(c["bad"] for c in conc)
    first_bad = seq["first_bad"] or next((c["first_bad"] for c in conc if c["first_bad"]), None)
    return {
        "p50_ms": _pct(seq_ns, 0.50),
        "p99_ms": _pct(seq_ns, 0.99),
        "rps_1": len(seq_ns) / seq["timed_s"],
        "rps_n": len(conc_ns) / sizes.seconds,
        "p50_n_ms": _pct(conc_ns, 0.50),
        "p99_n_ms": _pct(conc_ns, 0.99),
        "requests": len(seq_ns) + len(conc_ns),
        "bad": bad,
        "first_bad": first_bad,
    }


def triptych_serve_available() -> str | None:
    """``triptych serve --help`` when the command exists, else None."""
    proc = subprocess.run(
        [sys.executable, "-m", "triptych", "serve", "--help"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def triptych_version() -> str:
    from _machine import triptych_version as version  # beside this script (see _machine.py)

    return version(untracked="all")


def prepare(
    args: argparse.Namespace, workdir: Path, script: Path
) -> tuple[list[Server], list[str]]:
    """Fit the reference model, write the payloads, set up every contender that can run here.
    Returns the servers and notes on the ones left out."""
    model, X, _ = fit_model(frame=True)
    expected = model.predict(X).tolist()
    notes: list[str] = []
    servers: list[Server] = []

    def payload_file(kind: str, check: bool) -> Path:
        path = workdir / f"payloads-{kind}{'' if check else '-unchecked'}.json"
        bodies = [b.decode() for b in payloads(kind, X)]
        path.write_text(json.dumps({"bodies": bodies, "expected": expected if check else None}))
        return path

    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    for key in wanted:
        if key not in SERVERS:
            raise BenchmarkError(f"unknown server {key!r}: choose from {', '.join(SERVERS)}")
    script_cmd = [sys.executable, str(script), "--worker"]
    if "floor" in wanted:
        floor = Server(
            "floor",
            [*script_cmd, "floor", "{port}"],
            _clean_env(),
            "/predict",
            payload_file("ceiling", check=False),
            "asyncio canned answer",
        )
        servers.append(floor)
    if "ceiling" in wanted:
        python = next(
            (
                p
                for p in (args.ceiling_python, sys.executable, args.mlflow_python)
                if p and Path(p).exists() and _imports(p, CEILING_MODULES)
            ),
            None,
        )
        if python is None:
            notes.append("ceiling left out: no interpreter with " + ", ".join(CEILING_MODULES))
        else:
            servers.append(
                Server(
                    "ceiling",
                    [python, str(script), "--worker", "ceiling", "{port}"],
                    _clean_env(),
                    "/predict",
                    payload_file("ceiling", check=True),
                    f"uvicorn + httptools + uvloop + orjson ({python})",
                )
            )
    if "triptych" in wanted:
        help_text = triptych_serve_available()
        if help_text is None:
            notes.append("triptych left out: this checkout has no `triptych serve` command yet")
        else:
            home = workdir / "triptych-home"
            env = _clean_env(TRIPTYCH_HOME=str(home))
            _progress("triptych: logging and registering the model")
            info = run_worker(
                sys.executable, script, ["--worker", "setup-triptych", str(workdir)], env
            )
            cmd = [sys.executable, "-m", "triptych", "serve", MODEL_URI, "--port", "{port}"]
            if "--host" in help_text:
                cmd += ["--host", "127.0.0.1"]
            if "--workers" in help_text:
                cmd += ["--workers", "1"]
            cmd += args.triptych_arg
            if args.profile:
                cmd[1:3] = [
                    "-m",
                    "cProfile",
                    "-o",
                    str(Path(args.profile).resolve()),
                    "-m",
                    "triptych",
                ]
            servers.append(
                Server(
                    "triptych",
                    cmd,
                    env,
                    "/predict",
                    payload_file("triptych", True),
                    f"{triptych_version()}, {MODEL_URI} = version {info['version']}",
                )
            )
    if "mlflow" in wanted:
        python = args.mlflow_python
        mlflow_cli = Path(python).parent / "mlflow"
        if not (Path(python).exists() and mlflow_cli.exists()):
            notes.append(f"MLflow left out: no {mlflow_cli} (see the docstring to install it)")
        else:
            _progress("MLflow: saving the model")
            # as if its venv were activated: MLflow starts `uvicorn` from PATH
            path = f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"
            env = _clean_env(PATH=path, VIRTUAL_ENV=str(mlflow_cli.parent.parent))
            info = run_worker(python, script, ["--worker", "setup-mlflow", str(workdir)], env)
            cmd = [
                str(mlflow_cli),
                "models",
                "serve",
                "-m",
                info["path"],
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                "{port}",
                "--workers",
                "1",
            ]
            servers.append(
                Server(
                    "mlflow",
                    cmd,
                    env,
                    "/invocations",
                    payload_file("mlflow", True),
                    f"MLflow {info['mlflow']}, scikit-learn {info['sklearn']}",
                )
            )
    # the model's own predict on one row, for scale
    row = X.to_numpy()[:1]
    bare = fit_model(frame=False)[0]
    times = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        bare.predict(row)
        times.append(time.perf_counter_ns() - t0)
    args.predict_ms = statistics.median(times) / 1e6
    return servers, notes


def machine_info() -> dict[str, Any]:
    from _machine import machine_info as info  # beside this script (see _machine.py)

    return info()


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    _pin(CLIENT_CPU)  # the driver and every client process it starts
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as root:
        workdir = Path(root)
        script = workdir / "serving_worker.py"  # outside any git checkout
        shutil.copyfile(Path(__file__).with_name("_serving_workers.py"), script)
        servers, notes = prepare(args, workdir, script)
        for rep in range(args.repeat):
            order = servers if rep % 2 == 0 else list(reversed(servers))
            for server in order:
                _progress(f"repeat {rep + 1}/{args.repeat}: {LABELS[server.key]}")
                result = measure(server, script, sizes, workdir, args.client_procs, args.load)
                server.results.append(result)
                if result["bad"]:
                    notes.append(
                        f"{LABELS[server.key]}: {result['bad']} bad answers, "
                        f"first: {result['first_bad']}"
                    )
        from _serving_report import PAIRS, ratios, summarise, targets  # beside this script

        summary = summarise(servers)
        if args.profile:
            notes.append(
                f"triptych ran under cProfile: its figures are slowed; profile in {args.profile}"
            )
        return {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "quick": args.quick,
            "labels": LABELS,
            "cpus": {"server": SERVER_CPU, "client": CLIENT_CPU},
            "sizes": sizes.__dict__,
            "repeat": args.repeat,
            "client_procs": args.client_procs,
            "predict_ms": args.predict_ms,
            "machine": machine_info(),
            "summary": summary,
            "ratios": {f"{a}/{b}": r for a, b in PAIRS if (r := ratios(summary, a, b))},
            "targets": targets(summary),
            "raw": {s.key: s.results for s in servers},
            "notes": notes,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few hundred requests")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; every second one reversed")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="subset of " + ",".join(SERVERS)
    )
    parser.add_argument("--client-procs", type=int, default=1, help="processes for the clients")
    parser.add_argument(
        "--load",
        choices=("asyncio", "threads"),
        default="asyncio",
        help="concurrent clients: connections on one asyncio loop per process, or threads "
        "with http.client",
    )
    parser.add_argument("--mlflow-python", default="/tmp/mlflowvenv/bin/python")
    parser.add_argument("--ceiling-python", default=None, help="interpreter with uvicorn etc.")
    parser.add_argument(
        "--triptych-arg",
        action="append",
        default=[],
        help="extra argument for `triptych serve` (repeatable)",
    )
    parser.add_argument("--profile", metavar="FILE", help="run triptych alone under cProfile")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the report as JSON instead of a table; with FILE, write it there too",
    )
    args = parser.parse_args(argv)

    if args.profile:
        args.servers = "triptych"
    try:
        report = run_benchmark(args)
    except BenchmarkError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    from _report import emit  # beside this script (see _machine.py)
    from _serving_report import print_profile, print_report

    def show() -> None:
        print_report(report)
        if args.profile:
            print_profile(args.profile)

    emit(report, args.json, show)
    bad = any(s["bad"] for s in report["summary"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
