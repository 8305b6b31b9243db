"""The dataset registry through its Python API, on real stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import triptych
from triptych.errors import Conflict, InvalidInput, NotFound


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, 200),
            "bmi": rng.normal(25, 4, 200).round(2),
            "city": rng.choice(["lyon", "oslo", "pune"], 200),
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    name = path.name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, index=False, sep="\t")
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl", "d.parquet"])
def test_every_format_gives_the_same_table(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    reference = triptych.data.add("ref", frame)
    version = triptych.data.add("people", _write(frame, tmp_path / name))
    assert (version.uri, version.rows) == ("datasets:/people@1", 200)
    assert version.digest == reference.digest  # content, not file format, is identified
    loaded = triptych.data.load("datasets:/people@latest")
    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
    assert version.source is not None and version.source.endswith(name)


def test_arrow_table_and_identical_content_deduplicate(frame: pd.DataFrame) -> None:
    first = triptych.data.add("people", frame, description="v1", tags={"origin": "test"})
    again = triptych.data.add("people", pa.Table.from_pandas(frame, preserve_index=False))
    assert again.version == first.version == 1
    changed = frame.assign(bmi=frame.bmi + 1)
    second = triptych.data.add("people", changed)
    assert second.version == 2 and second.digest != first.digest
    assert [v.version for v in triptych.data.versions("people")] == [1, 2]
    assert dict(triptych.data.get("people@1").tags) == {"origin": "test"}
    assert triptych.data.get("people@1").description == "v1"


def test_schema_inferred_at_first_version_and_kept(frame: pd.DataFrame) -> None:
    triptych.data.add("people", frame)
    schema = triptych.data.get_schema("people")
    city = schema.column("city")
    assert (city.dtype, city.categories) == ("category", ["lyon", "oslo", "pune"])
    assert schema.column("age").min == frame.age.min()
    v2 = triptych.data.add("people", frame.head(50))  # a new version keeps the schema
    assert v2.schema == schema.to_dict()


def test_profile_is_stored_with_the_version(frame: pd.DataFrame) -> None:
    v = triptych.data.add("people", frame)
    profile = v.profile
    assert profile is not None and profile["rows"] == 200
    bmi = profile["columns"]["bmi"]
    assert bmi["mean"] == pytest.approx(frame.bmi.mean())
    assert sum(bmi["histogram"]["counts"]) == 200
    assert profile["columns"]["city"]["top"][0][1] == frame.city.value_counts().max()
    json.dumps(profile, allow_nan=False)


def test_malformed_csv_names_the_line_and_records_nothing(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    path = tmp_path / "bad.csv"
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(120, "1,2,3,4")
    path.write_text("\n".join(lines) + "\n")
    blobs = tmp_path / ".triptych" / "artifacts" / "blobs"
    with pytest.raises(InvalidInput, match="line 121"):
        triptych.data.add("people", path)
    assert triptych.data.list_datasets() == []
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.csv", "", "(?i)no columns|empty"),
        ("x.jsonl", '{"a": 1}\n{"a": \n', "line 2"),
        ("x.parquet", "not parquet", "Parquet"),
        ("x.xlsx", "a", "format"),
    ],
)
def test_bad_sources_are_clear_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        triptych.data.add("bad", path)
    assert triptych.data.list_datasets() == []


def test_missing_file_and_bad_names(tmp_path: Path, frame: pd.DataFrame) -> None:
    with pytest.raises(NotFound):
        triptych.data.add("people", tmp_path / "nope.csv")
    for bad in ("../x", "a b", "", "a/b", "a@2"):
        with pytest.raises(InvalidInput):
            triptych.data.add(bad, frame)
    with pytest.raises(InvalidInput):
        triptych.data.get("datasets:/people@v2")
    with pytest.raises(NotFound):
        triptych.data.load("datasets:/people@1")


def test_column_types_widen_when_later_rows_need_it(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    rows = [f"{i},{i}" for i in range(300_000)] + ["1.5,text"]
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    version = triptych.data.add("wide", path)
    table = triptych.data.load_table(version.uri)
    assert str(table.schema.field("a").type) == "double"
    assert str(table.schema.field("b").type) == "string"
    assert table.num_rows == 300_001 and table.column("a")[-1].as_py() == 1.5


def test_lineage_and_deletion_safety(frame: pd.DataFrame) -> None:
    v1 = triptych.data.add("people", frame)
    triptych.data.add("copy", frame)  # same bytes under another name: shared blob
    with triptych.start_run(experiment="lineage") as run:
        triptych.log_input("datasets:/people@1")
    assert [r.run_id for r in triptych.data.lineage("people@1")] == [run.run_id]
    recorded = triptych.Client().get_run(run.run_id).inputs[0]
    assert (recorded.name, recorded.digest, recorded.source) == ("people@1", v1.digest, v1.uri)
    # "copy@1" holds the same content, so deleting "people@1" breaks no lineage.
    triptych.data.delete("people@1")
    with pytest.raises(NotFound):
        triptych.data.get("people@1")
    client = triptych.Client()
    assert client.artifacts.exists(v1.blob_digest)  # "copy" still uses the bytes
    pd.testing.assert_frame_equal(triptych.data.load("copy@1"), frame, check_dtype=False)
    with pytest.raises(Conflict, match="1 run"):  # now the last holder of that content
        triptych.data.delete("copy@1")
    assert triptych.data.get("copy@1").version == 1  # still there
    triptych.data.delete("copy@1", force=True)
    assert not client.artifacts.exists(v1.blob_digest)


def test_validate_streams_and_reports_every_violation(tmp_path: Path, frame: pd.DataFrame) -> None:
    triptych.data.add("people", frame)
    new = frame.copy()
    new.loc[5, "age"] = 200  # out of range
    new.loc[7, "city"] = "rome"  # unknown category
    new["bmi"] = new["bmi"].astype(object)
    new.loc[9, "bmi"] = None  # null where not allowed
    new["extra"] = 1
    path = _write(new.drop(columns=["city"]).assign(city=new.city), tmp_path / "new.parquet")
    kinds = {(v.kind, v.column): v.count for v in triptych.data.validate("people", path)}
    assert kinds == {
        ("out_of_range", "age"): 1,
        ("unknown_category", "city"): 1,
        ("nulls", "bmi"): 1,
        ("extra_column", "extra"): 0,
    }
    assert triptych.data.validate("people", frame) == []


def test_split_is_deterministic_and_recorded(frame: pd.DataFrame) -> None:
    from sklearn.model_selection import train_test_split

    with triptych.start_run() as run:
        s = triptych.data.split(frame, test_size=0.25, seed=3, stratify="city")
    expected_train, _ = train_test_split(frame, test_size=0.25, random_state=3, stratify=frame.city)
    assert list(s.train.index) == list(expected_train.index)
    assert sorted(s.train_rows + s.test_rows) == list(range(200))
    client = triptych.Client()
    recorded = json.loads(client.read_artifact(run.run_id, "splits/split.json"))
    assert recorded["test_rows"] == s.test_rows and recorded["digest"] == s.digest
    got = client.get_run(run.run_id)
    assert got.params["split.seed"] == "3" and got.params["split.stratify"] == "city"
    assert {i.name for i in got.inputs} == {"split.train", "split.test"}
    again = triptych.data.split(frame, test_size=0.25, seed=3, stratify="city", log=False)
    assert again.digest == s.digest
    with pytest.raises(InvalidInput):
        triptych.data.split(frame, test_size=1.5)


@pytest.mark.s3
def test_datasets_on_s3(
    s3_bucket: str,
    s3_endpoint: str,
    frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triptych.testing import reset_process_state

    monkeypatch.setenv("TRIPTYCH_TRACKING_URI", f"sqlite:///{tmp_path / 's3.db'}")
    monkeypatch.setenv("TRIPTYCH_ARTIFACT_URI", s3_bucket)
    monkeypatch.setenv("TRIPTYCH_S3_ENDPOINT_URL", s3_endpoint)
    reset_process_state()
    v = triptych.data.add("people", frame)
    pd.testing.assert_frame_equal(triptych.data.load(v.uri), frame, check_dtype=False)
    client = triptych.Client()
    assert client.artifacts.root == s3_bucket
    table = pq.read_table(pa.BufferReader(client.artifacts.get_bytes(v.blob_digest)))
    assert table.num_rows == 200


def test_schema_merges_row_groups_that_disagree(tmp_path: Path) -> None:
    """A column that looks categorical in one row group and free text in another is text."""
    from triptych.data.registry import infer_file_schema

    path = tmp_path / "groups.parquet"
    writer = pq.ParquetWriter(path, pa.schema([("c", pa.string()), ("n", pa.int64())]))
    writer.write_table(pa.table({"c": ["a", "b"] * 50, "n": list(range(100))}))
    writer.write_table(pa.table({"c": [f"id{i}" for i in range(100)], "n": list(range(-5, 95))}))
    writer.close()
    schema = infer_file_schema(path)
    c, n = schema.column("c"), schema.column("n")
    assert (c.dtype, c.categories) == ("string", None)
    assert (n.dtype, n.min, n.max) == ("int", -5, 99)
    type(schema).from_dict(schema.to_dict())  # what is stored can be read back
