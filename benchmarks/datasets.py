"""Dataset benchmark: add a large CSV with bounded memory; profile 1M rows x 20 columns.

    python benchmarks/datasets.py               # 1 GB CSV (written once into a temp folder)
    python benchmarks/datasets.py --size-mb 100 # a quicker run
    python benchmarks/datasets.py --json

Figures: the CSV's size, seconds and MB/s for ``triptych.data.add`` (streaming parse,
digest, Parquet, profile, upload into the artifact store), the adding process's peak
resident memory (from the kernel: ``wait4`` rusage), and ``profile()`` on 1M x 20 in memory.
The add runs in a fresh process so its peak memory is its own.
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

COLUMNS = 20
ROWS_PER_CHUNK = 200_000


def write_csv(path: Path, size_mb: int) -> int:
    """A CSV of about ``size_mb`` MB: 16 float, 2 int and 2 text columns; returns rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    rows = 0
    with pacsv.CSVWriter(path, _schema()) as writer:
        while path.stat().st_size < size_mb * 1_000_000:
            n = ROWS_PER_CHUNK
            cols: dict[str, Any] = {f"f{i}": rng.normal(i, 1 + i, n).round(6) for i in range(16)}
            cols["i0"] = rng.integers(0, 1000, n)
            cols["i1"] = rng.integers(-50, 50, n)
            cols["s0"] = rng.choice(["alpha", "beta", "gamma", "delta"], n)
            cols["s1"] = rng.choice([f"user{k}" for k in range(500)], n)
            writer.write_table(pa.table(cols, schema=_schema()))
            rows += n
    return rows


def _schema() -> Any:
    import pyarrow as pa

    fields = [pa.field(f"f{i}", pa.float64()) for i in range(16)]
    fields += [pa.field("i0", pa.int64()), pa.field("i1", pa.int64())]
    fields += [pa.field("s0", pa.string()), pa.field("s1", pa.string())]
    return pa.schema(fields)


ADD = """
import sys, time, triptych
start = time.perf_counter()
v = triptych.data.add("big", sys.argv[1])
print(time.perf_counter() - start, v.rows, v.size)
"""


def measure_add(csv: Path, home: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    child = subprocess.Popen(
        [sys.executable, "-c", ADD, str(csv)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"add failed with exit code {child.returncode}")
    seconds, rows, stored = out.split()
    size = csv.stat().st_size
    return {
        "csv_mb": size / 1e6,
        "rows": int(rows),
        "seconds": float(seconds),
        "mb_per_s": size / 1e6 / float(seconds),
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        "parquet_mb": int(stored) / 1e6,
    }


def measure_profile(rows: int = 1_000_000, repeats: int = 3) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from triptych.data.profile import profile

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(16)})
    frame["i0"] = rng.integers(0, 1000, rows)
    frame["i1"] = rng.integers(-50, 50, rows)
    frame["s0"] = rng.choice(["alpha", "beta", "gamma", "delta"], rows)
    frame["s1"] = rng.choice([f"user{k}" for k in range(500)], rows)
    best = min(_timed(lambda: profile(frame)) for _ in range(repeats))
    return {"rows": rows, "columns": COLUMNS, "seconds": best}


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000, help="CSV size to add")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        csv = Path(tmp) / "big.csv"
        write_csv(csv, args.size_mb)
        add = measure_add(csv, Path(tmp) / "home")
    prof = measure_profile()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "add_csv": add,
        "profile": prof,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"add {add['csv_mb']:.0f} MB CSV ({add['rows']:,} rows x {COLUMNS}): "
        f"{add['seconds']:.1f} s, {add['mb_per_s']:.0f} MB/s, "
        f"peak RSS {add['peak_rss_mb']:.0f} MB, "
        f"stored as {add['parquet_mb']:.0f} MB of Parquet"
    )
    print(f"profile {prof['rows']:,} x {prof['columns']}: {prof['seconds']:.2f} s (best of 3)")


if __name__ == "__main__":
    main()
