"""``triptych data …`` run as a user runs it: a real process on a real home folder.

The Python API sets things up (datasets, schemas, runs) in the same home the command reads.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import triptych
from triptych.data import registry
from triptych.data.schema import VIOLATION_KINDS, Schema
from triptych.errors import NotFound

SPARK = set("▁▂▃▄▅▆▇█")


def cli(*args: str, home: Path, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    environ.update(env, TRIPTYCH_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "data", *args],
        capture_output=True,
        text=True,
        env=environ,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def one_line_error(done: subprocess.CompletedProcess[str], *texts: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error:")
    for text in texts:
        assert text in line
    return line


def people(n: int = 400, seed: int = 0, income_shift: float = 0.0) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": (rng.normal(50_000, 10_000, n) + income_shift).round(2),
            "city": rng.choice(["Lyon", "Nice", "Paris"], n),
        }
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder the Python API writes to, as the command reads it."""
    home = tmp_path / "home"
    triptych.set_tracking_uri(
        f"sqlite:///{home / 'triptych.db'}", artifact_uri=str(home / "artifacts")
    )
    return home


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    return path


def test_add_then_identical_content_list_and_show(home: Path, good: Path, tmp_path: Path) -> None:
    out = cli("add", "people", str(good), "-d", "first cut", "--tag", "owner=ana", home=home)
    assert "datasets:/people@1" in out.stdout and "400 rows, 3 columns" in out.stdout
    assert "new version" in out.stdout
    # The same table from another file (Parquet) is the same version, not a new one.
    copy = tmp_path / "copy.parquet"
    pd.read_csv(good).to_parquet(copy, index=False)
    again = json.loads(cli("add", "people", str(copy), "--json", home=home).stdout)
    assert again["created"] is False and again["uri"] == "datasets:/people@1"
    assert again["rows"] == 400 and again["columns"] == 3 and again["tags"] == {"owner": "ana"}

    listed = json.loads(cli("list", "--json", home=home).stdout)
    assert [(d["name"], d["latest_version"], d["versions"]) for d in listed] == [("people", 1, 1)]
    assert listed[0]["last_update_time"] > 0

    shown = cli("show", "people", home=home).stdout
    for text in ("datasets:/people@1", "first cut", "owner=ana", str(good.resolve()), "Paris"):
        assert text in shown
    assert registry.get("people@1").digest in shown
    age_line = next(line for line in shown.splitlines() if "age" in line and "int" in line)
    assert SPARK & set(age_line)  # the histogram, inline

    data = json.loads(cli("show", "people@1", "--json", home=home).stdout)
    assert data["uri"] == "datasets:/people@1" and data["description"] == "first cut"
    assert set(data["profile"]["columns"]) == {"age", "income", "city"}
    assert sum(data["profile"]["columns"]["age"]["histogram"]["counts"]) == 400
    assert data["schema"]["columns"]["city"]["categories"] == ["Lyon", "Nice", "Paris"]
    assert data["creator_run_id"] is None and len(data["digest"]) == 64


def test_versions_tag_and_load_round_trip(home: Path, good: Path, tmp_path: Path) -> None:
    registry.add("people", good)
    second = people(n=50, seed=1)
    registry.add("people", second)
    versions = json.loads(cli("show", "people", "--versions", "--json", home=home).stdout)
    assert [(v["version"], v["rows"]) for v in versions] == [(1, 400), (2, 50)]

    out = cli("tag", "people@1", "stage=raw", "owner=ana", home=home).stdout
    assert "owner=ana, stage=raw" in out
    assert registry.get("people@1").tags == {"owner": "ana", "stage": "raw"}

    target = tmp_path / "out.parquet"
    cli("load", "people@1", "--output", str(target), home=home)
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.read_csv(good))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    head = json.loads(cli("load", "people", "--head", "3", "--json", home=home).stdout)
    assert head["uri"] == "datasets:/people@2" and head["rows"] == 50
    assert head["columns"] == ["age", "income", "city"]
    assert head["head"] == second.head(3).to_dict(orient="records")

    table = cli("load", "people@1", "-n", "2", home=home).stdout
    first = pd.read_csv(good).iloc[0]
    assert str(first["income"]) in table and "first 2 of 400 rows" in table


def test_validate_good_file_and_every_violation_kind(home: Path, good: Path) -> None:
    registry.add("people", good)
    expected = Schema.from_yaml(
        "columns:\n"
        "  age: {dtype: int, min: 18, max: 90}\n"
        "  income: {dtype: float}\n"
        "  city: {dtype: category, categories: [Lyon, Nice, Paris]}\n"
        "  zip: {dtype: string, nullable: true}\n"
    )
    registry.set_schema("people", expected)
    fine = good.with_name("fine.csv")
    people().assign(zip="FR-69").to_csv(fine, index=False)
    ok = cli("validate", "people", str(fine), home=home)
    assert f"ok: {fine} matches the schema of people" in ok.stdout

    bad = good.with_name("bad.csv")
    frame = people(n=20).astype({"age": "Int64", "income": object})
    frame.loc[0, "age"] = 5  # out_of_range
    frame.loc[1, "age"] = None  # nulls
    frame.loc[2, "income"] = "unknown"  # dtype: the column is text now
    frame.loc[3, "city"] = "Berlin"  # unknown_category
    frame.assign(extra=1).to_csv(bad, index=False)  # extra_column; zip is missing
    done = cli("validate", "people", str(bad), "--json", home=home, ok=False)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert {v["kind"] for v in report["violations"]} == set(VIOLATION_KINDS)
    by_kind = {v["kind"]: v for v in report["violations"]}
    assert by_kind["out_of_range"]["examples"] == [{"row": 0, "value": 5}]
    assert by_kind["unknown_category"]["column"] == "city"
    assert by_kind["missing_column"]["column"] == "zip"

    table = cli("validate", "people", str(bad), home=home, ok=False)
    assert table.returncode == 1 and "6 violation(s)" in table.stdout
    for kind in VIOLATION_KINDS:
        assert kind in table.stdout
    assert "'Berlin'" in table.stdout


def test_schema_print_set_and_edit(home: Path, good: Path, tmp_path: Path) -> None:
    registry.add("people", good)
    before = registry.get_schema("people")
    printed = cli("schema", "people", home=home).stdout
    assert Schema.from_yaml(printed) == before

    broken = tmp_path / "broken.yaml"
    broken.write_text("columns:\n  age: {dtype: int\n")
    line = one_line_error(cli("schema", "people", "--set", str(broken), home=home, ok=False))
    assert "malformed" in line and "line 3" in line and "schema unchanged" in line
    assert registry.get_schema("people") == before

    wanted = tmp_path / "wanted.yaml"
    wanted.write_text("columns:\n  age: {dtype: int, min: 0}\n  income: {dtype: float}\n")
    assert "2 columns" in cli("schema", "people", "--set", str(wanted), home=home).stdout
    assert registry.get_schema("people").names == ["age", "income"]

    # --edit: the editor is a script that edits the temp file in place.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import pathlib, sys\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('min: 0', 'min: 21'))\n"
    )
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}"
    cli("schema", "people", "--edit", home=home, EDITOR=command, VISUAL="")
    assert registry.get_schema("people").column("age").min == 21

    editor.write_text(
        "import pathlib, sys\npathlib.Path(sys.argv[1]).write_text('columns: [x\\n')\n"
    )
    done = cli("schema", "people", "--edit", home=home, ok=False, EDITOR=command, VISUAL="")
    line = one_line_error(done, "schema unchanged", "your edit is in")
    assert registry.get_schema("people").column("age").min == 21
    kept = Path(line.split("your edit is in ")[1].split(":")[0])
    assert kept.read_text() == "columns: [x\n"
    kept.unlink()


def test_check_detects_a_shift_and_passes_without_one(
    home: Path, good: Path, tmp_path: Path
) -> None:
    registry.add("people", good)
    shifted = tmp_path / "shifted.csv"
    people(seed=2, income_shift=15_000).to_csv(shifted, index=False)
    done = cli(
        "check", "people", str(shifted), "--reference", "people@1", "--json", home=home, ok=False
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["reference"] == "datasets:/people@1"
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"schema", "missing_values", "distribution_shift"}
    assert checks["missing_values"]["passed"] is True
    drift = checks["distribution_shift"]
    assert drift["passed"] is False
    assert drift["details"]["columns"]["income"]["drifted"] is True
    assert drift["details"]["columns"]["city"]["drifted"] is False

    # Same distribution, another sample: no shift; the schema's ranges hold.
    same = tmp_path / "same.csv"
    people(seed=0).head(300).to_csv(same, index=False)
    out = cli("check", "people", str(same), home=home).stdout
    assert "FAILED" not in out and out.count("passed") == 3
    assert "distribution shift against datasets:/people@1" in out


def test_lineage_then_delete_refused_until_forced(home: Path, good: Path) -> None:
    registry.add("people", good)
    with triptych.start_run(experiment="train", name="fit-1") as run:
        triptych.log_input("datasets:/people@1")
    triptych.flush()

    data = json.loads(cli("lineage", "people@1", "--json", home=home).stdout)
    assert data["uri"] == "datasets:/people@1"
    assert [(r["run_id"], r["name"], r["status"]) for r in data["runs"]] == [
        (run.run_id, "fit-1", "FINISHED")
    ]
    assert "fit-1" in cli("lineage", "people", home=home).stdout

    refused = cli("delete", "people@1", home=home, ok=False)
    one_line_error(refused, "used by 1 run", run.run_id[:8], "--force")
    assert registry.get("people@1").version == 1
    assert cli("delete", "people@1", "--force", home=home).stdout.strip() == (
        "deleted datasets:/people@1"
    )
    with pytest.raises(NotFound):
        registry.get("people@1")


def test_malformed_csv_names_the_line_and_adds_nothing(home: Path, good: Path) -> None:
    registry.add("people", good)
    broken = good.with_name("broken.csv")
    broken.write_text("age,income,city\n30,1.5,Lyon\n31,2.5,Nice,extra\n32,3.5,Paris\n")
    done = cli("add", "people", str(broken), home=home, ok=False)
    one_line_error(done, "broken.csv, line 3", "expected 3 fields, found 4")
    listed = json.loads(cli("list", "--json", home=home).stdout)
    assert [(d["name"], d["latest_version"], d["versions"]) for d in listed] == [("people", 1, 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "not found"),
        (("delete", "people"), "name the version to delete"),
    ],
)
def test_errors_are_one_line(home: Path, args: tuple[str, ...], message: str) -> None:
    one_line_error(cli(*args, home=home, ok=False), message)


def test_data_help_is_light() -> None:
    probe = (
        "from triptych.cli.main import app\n"
        "try:\n    app(['data', '--help'])\nexcept SystemExit:\n    pass\n"
        "import sys\nprint(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "validate" in out.stdout and "lineage" in out.stdout
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert not loaded & {"pandas", "pyarrow", "numpy", "sqlalchemy", "scipy"}
