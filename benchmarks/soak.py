"""Soak benchmark: 16 concurrent clients against ``triptych server`` for 60 s, then a count of
every row they were told was written.

A team server (one worker) over a fresh SQLite file and/or a fresh PostgreSQL database, and a
``triptych serve`` of the diabetes Ridge whose store is that server (its prediction log goes
through it). Each client thread (every fourth through the fluent API) loops: every tenth round
all clients create the same new experiment at once; create a run, ``log_batch`` (100 metric
points, 3 params, a tag), upload two small artifacts (one with the same bytes from every
client) and record them, every third round register a version of one of three shared model
names and move its ``newest`` alias, every second round a prediction (2 rows), a batch of 6
metrics and tags on one run shared by every client (each in its own key order), finish the run.
Afterwards the store is read directly (not through the server): rows lost = acknowledged -
found, for runs, metric points, params, tags, artifacts (row and bytes), model versions (1..n
per model, no gaps, no number given twice), alias events and logged predictions. The workload
lives in ``triptych.testing.soak``; ``tests/test_gauntlet_soak.py`` runs it for 8 s in CI.

"requests" are the clients' timed calls, each one HTTP request except an upload of bytes (a
HEAD, then a PUT unless the server has them) and the fluent clients' ``start_run`` and
``log_text`` (a few each); latencies are per call. "retries" are the transient database
errors (locks, deadlocks, serialization failures) the server retried with backoff; "errors" are
what reached a client, and must be 0::

    python benchmarks/soak.py                         # 60 s per backend, 16 clients, both
    python benchmarks/soak.py --quick                 # 10 s per backend
    python benchmarks/soak.py --backend sqlite --seconds 30 --clients 8
    python benchmarks/soak.py --json soak.json        # the table, and the JSON in soak.json

PostgreSQL: ``--postgres-url`` or ``TRIPTYCH_TEST_POSTGRES_URL`` (a server the user may create
databases on); the soak creates a database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def run(backend: str, args: argparse.Namespace) -> Any:
    from triptych.testing import soak

    print(f"... {backend}: {args.seconds:g} s, {args.clients} clients", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"bench-soak-{backend}-") as root:
        home = Path(root)
        if backend == "sqlite":
            return soak.soak(
                backend, f"sqlite:///{home / 'soak.db'}", home,
                seconds=args.seconds, clients=args.clients,
            )  # fmt: skip
        if not args.postgres_url:
            raise SystemExit(
                "--backend postgres needs --postgres-url or TRIPTYCH_TEST_POSTGRES_URL"
            )
        with soak.postgres_database(args.postgres_url) as url:
            return soak.soak(backend, url, home, seconds=args.seconds, clients=args.clients)


def render(results: list[Any], machine: dict[str, Any], version: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"triptych {version} · {machine}")
    table = Table(title="Soak: concurrent clients against triptych server", title_justify="left")
    for col in ("backend", "seconds", "clients", "requests", "req/s", "p50 ms", "p99 ms",
                "errors", "retries", "rows expected", "rows found", "rows lost"):  # fmt: skip
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in results:
        table.add_row(
            r.backend,
            f"{r.seconds:.1f}",
            str(r.clients),
            f"{r.requests:,}",
            f"{r.rate:,.0f}",
            f"{r.percentile(0.5):.1f}",
            f"{r.percentile(0.99):.1f}",
            _mark(len(r.errors)),
            f"{r.retries:,}",
            f"{r.expected:,}",
            f"{r.found:,}",
            _mark(r.lost),
        )
    console.print(table)
    kinds = Table(title="Rows per kind (expected / found)", title_justify="left")
    kinds.add_column("backend")
    names = list(results[0].counts)
    for name in names:
        kinds.add_column(name, justify="right")
    for r in results:
        kinds.add_row(
            r.backend, *(f"{r.counts[n].expected:,} / {r.counts[n].found:,}" for n in names)
        )
    console.print(kinds)
    for r in results:
        for problem in r.problems:
            console.print(f"[red]{r.backend}: {problem}[/]")
        for error in r.errors[:10]:
            console.print(f"[red]{r.backend}: {error}[/]", markup=False)


def _mark(n: int) -> str:
    return str(n) if n == 0 else f"[red]{n}[/]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10 s per backend")
    parser.add_argument("--postgres-url", default=os.environ.get("TRIPTYCH_TEST_POSTGRES_URL"))
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 10.0)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = [run(b, args) for b in backends]

    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine_info, triptych_version

    machine, version = machine_info(), triptych_version(untracked="no")
    render(results, machine, version)
    if args.json_out:
        report = {
            "machine": machine,
            "triptych_version": version,
            "results": [
                {
                    "backend": r.backend, "seconds": r.seconds, "clients": r.clients,
                    "requests": r.requests, "requests_per_s": r.rate,
                    "p50_ms": r.percentile(0.5), "p99_ms": r.percentile(0.99),
                    "errors": r.errors, "retries": r.retries,
                    "rows": {k: {"expected": c.expected, "found": c.found}
                             for k, c in r.counts.items()},
                    "problems": r.problems,
                }
                for r in results
            ],
        }  # fmt: skip
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    if any(r.errors or r.lost or r.problems for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
