"""``triptych predict``: batch scoring of Parquet and CSV files, row checks, rejects, threshold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import Ridge

import triptych
from triptych.errors import InvalidInput, NotFound
from triptych.scoring.batch import score_file


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "age": rng.normal(50, 10, n),
            "bmi": rng.normal(25, 4, n),
            "visits": rng.integers(0, 10, n),
        }
    )


@pytest.fixture
def model_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    train = table(200)
    features = train[["age", "bmi", "visits"]]
    with triptych.start_run():
        model = Ridge().fit(features, features @ [1.0, 2.0, 3.0])
        logged = triptych.log_model(model, input_example=features.head(3))
    triptych.registry.register(logged.uri, "risk")
    return "models:/risk/1"


def expected(frame: pd.DataFrame) -> np.ndarray:
    model = triptych.load_model("models:/risk/1")
    return np.asarray(model.predict(frame[["age", "bmi", "visits"]]))


def test_parquet_in_chunks_and_parallel_matches_the_model(model_uri: str, tmp_path: Path) -> None:
    frame = table(25_000, seed=1)
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(source, row_group_size=3000)
    seen: list[tuple[int, int | None]] = []
    result = score_file(
        model_uri,
        source,
        target,
        chunk_size=4000,
        workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.rows, result.scored, result.rejected, result.rejects) == (
        25_000,
        25_000,
        0,
        None,
    )
    out = pq.read_table(target).to_pandas()
    assert list(out.columns) == ["id", "age", "bmi", "visits", "prediction"]
    assert out["id"].tolist() == frame["id"].tolist()  # input order kept across workers
    np.testing.assert_allclose(out["prediction"], expected(frame))
    assert seen[-1] == (25_000, 25_000) and len(seen) == 7  # one update per chunk
    assert not (tmp_path / "out.rejects.parquet").exists()


def test_csv_rows_that_fail_the_signature_go_to_the_rejects_file(
    model_uri: str, tmp_path: Path
) -> None:
    frame = table(1000, seed=2).astype({"age": object, "bmi": object, "visits": object})
    frame.loc[10, "age"] = "abc"
    frame.loc[500, "bmi"] = None
    frame.loc[999, "visits"] = 2.5
    source, target, side = tmp_path / "in.csv", tmp_path / "out.parquet", tmp_path / "bad.parquet"
    frame.to_csv(source, index=False)
    result = score_file(model_uri, source, target, chunk_size=300, rejects_path=side)
    assert (result.rows, result.scored, result.rejected) == (1000, 997, 3)
    bad = pq.read_table(side).to_pandas()
    assert bad["row"].tolist() == [11, 501, 1000]
    assert bad["reason"].tolist() == [
        "age: 'abc' is not a number",
        "bmi: missing value",
        "visits: '2.5' is not an integer",
    ]
    assert bad["id"].tolist() == ["p10", "p500", "p999"]
    out = pq.read_table(target)
    assert out.schema.field("age").type == pa.float64()
    assert out.schema.field("visits").type == pa.int64()
    assert out.schema.field("id").type == pa.string()  # other columns are copied as text
    good = table(1000, seed=2).drop(index=[10, 500, 999])
    np.testing.assert_allclose(out.column("prediction").to_numpy(), expected(good), rtol=1e-9)
    assert result.sample[0] == {"row": 11, "reason": "age: 'abc' is not a number"}


def test_past_the_error_threshold_nothing_is_written(model_uri: str, tmp_path: Path) -> None:
    frame = table(1000).astype({"age": object})
    frame.loc[frame.index[::20], "age"] = "unknown"  # 5% bad
    source, target = tmp_path / "in.csv", tmp_path / "out.parquet"
    frame.to_csv(source, index=False)
    target.write_bytes(b"previous results")
    with pytest.raises(InvalidInput, match=r"over --max-error-rate 1\.0%.*row 1: age: 'unknown'"):
        score_file(model_uri, source, target, chunk_size=100, workers=2)
    assert target.read_bytes() == b"previous results"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.csv", "out.parquet"]
    # Allowed a higher rate, the same file scores with its rejects set aside.
    result = score_file(model_uri, source, target, max_error_rate=0.1)
    assert (result.scored, result.rejected) == (950, 50)
    assert result.rejects == str(tmp_path / "out.rejects.parquet")


def test_a_missing_column_is_a_clear_error_and_writes_nothing(
    model_uri: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table(10).drop(columns="bmi").to_parquet(source)
    with pytest.raises(InvalidInput, match=r"no column.*'bmi'"):
        score_file(model_uri, source, target)
    assert not target.exists()
    with pytest.raises(NotFound):
        score_file(model_uri, tmp_path / "nope.parquet", target)
    with pytest.raises(InvalidInput, match=r"\.parquet"):
        score_file(model_uri, source, tmp_path / "out.csv")
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(InvalidInput, match="format"):
        score_file(model_uri, tmp_path / "in.json", target)
    with pytest.raises(InvalidInput, match="differ"):
        score_file(model_uri, source, source.with_suffix(".parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.json", "in.parquet"]


def test_memory_stays_bounded_by_the_chunk_size(model_uri: str, tmp_path: Path) -> None:
    """Arrow's peak allocation does not grow with the file: 4x the rows, about the same peak."""
    code = (
        "import sys, pyarrow as pa\n"
        "from triptych.scoring.batch import score_file\n"
        "r = score_file(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=10000)\n"
        "print(r.scored, pa.default_memory_pool().max_memory())\n"
    )
    peaks = {}
    for rows in (100_000, 400_000):
        source = tmp_path / f"in{rows}.parquet"
        table(rows, seed=3).to_parquet(source, row_group_size=20_000)
        done = subprocess.run(
            [sys.executable, "-c", code, model_uri, str(source), str(tmp_path / "out.parquet")],
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        assert done.returncode == 0, done.stderr
        scored, peaks[rows] = map(int, done.stdout.split())
        assert scored == rows
    full = pa.Table.from_pandas(table(400_000, seed=3)).nbytes
    print(f"peak Arrow memory {peaks} bytes; the 400k-row table is {full} bytes")
    assert peaks[400_000] < 1.5 * peaks[100_000]
    assert peaks[400_000] < full / 2


def test_cli_prints_a_json_summary_and_one_line_errors(model_uri: str, tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table(50).to_parquet(source)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "triptych", "predict", *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )

    done = cli(model_uri, "--input", str(source), "--output", str(target), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == 50 and summary["scored"] == 50 and summary["rejects"] is None
    human = cli(model_uri, "-i", str(source), "-o", str(target), "--workers", "2")
    assert human.returncode == 0 and "scored 50 of 50 rows" in human.stdout
    bad = cli("models:/nope/1", "-i", str(source), "-o", str(tmp_path / "x.parquet"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.parquet").exists()
