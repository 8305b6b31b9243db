"""The fluent tracking API and the client, as a user drives them (SQLite, local artifacts)."""

from __future__ import annotations

import json
import math

import pytest

import triptych
from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.store.entities import RunStatus
from triptych.tracking.fingerprint import DIFF_ARTIFACT


def test_run_records_params_metrics_tags_and_finishes() -> None:
    with triptych.start_run(experiment="exp", name="first", tags={"team": "ds"}) as run:
        triptych.log_param("alpha", 0.5)
        triptych.log_params({"model": "Ridge", "n": 3})
        for step in range(5):
            triptych.log_metric("loss", 1.0 / (step + 1), step=step)
        triptych.log_metrics({"mse": 3299.0, "r2": 0.33})
        triptych.set_tag("stage", "dev")
        assert triptych.active_run() is run
    assert triptych.active_run() is None
    got = triptych.Client().get_run(run.run_id)
    assert got.status is RunStatus.FINISHED and got.end_time is not None
    assert got.name == "first"
    assert dict(got.params) == {"alpha": "0.5", "model": "Ridge", "n": "3"}
    assert dict(got.metrics) == {"loss": 0.2, "mse": 3299.0, "r2": 0.33}
    assert got.tags["team"] == "ds" and got.tags["stage"] == "dev"
    history = triptych.Client().get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert triptych.Client().get_experiment(got.experiment_id).name == "exp"


def test_default_experiment_and_generated_names() -> None:
    with triptych.start_run() as a, triptych.start_run(nested=True) as b:
        pass
    client = triptych.Client()
    run_a, run_b = client.get_run(a.run_id), client.get_run(b.run_id)
    assert client.get_experiment(run_a.experiment_id).name == "Default"
    assert run_b.parent_run_id == a.run_id and run_b.experiment_id == run_a.experiment_id
    assert run_a.name and run_a.name != run_b.name


def test_exception_marks_run_failed_with_reason() -> None:
    with pytest.raises(ZeroDivisionError), triptych.start_run() as run:
        triptych.log_metric("before", 1.0)
        _ = 1 / 0
    got = triptych.Client().get_run(run.run_id)
    assert got.status is RunStatus.FAILED
    assert got.metrics["before"] == 1.0  # what was logged before the error is kept
    assert "ZeroDivisionError" in got.tags["triptych.status_reason"]


def test_ctrl_c_marks_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt), triptych.start_run() as run:
        raise KeyboardInterrupt
    assert triptych.Client().get_run(run.run_id).status is RunStatus.KILLED


def test_end_run_with_status_and_resume() -> None:
    run = triptych.start_run()
    triptych.end_run("KILLED")
    assert triptych.Client().get_run(run.run_id).status is RunStatus.KILLED
    with triptych.start_run(run_id=run.run_id):
        triptych.log_metric("resumed", 1.0)
    got = triptych.Client().get_run(run.run_id)
    assert got.status is RunStatus.FINISHED and got.metrics["resumed"] == 1.0


def test_second_active_run_needs_nested() -> None:
    with triptych.start_run() as outer:
        with pytest.raises(Conflict, match="nested=True"):
            triptych.start_run()
        assert triptych.active_run() is outer


def test_logging_without_run_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="no active run"):
        triptych.log_metric("x", 1.0)


def test_changing_a_param_is_refused_at_once() -> None:
    with triptych.start_run() as run:
        triptych.log_param("alpha", 0.5)
        triptych.log_param("alpha", 0.5)
        with pytest.raises(Conflict, match="alpha"):
            triptych.log_param("alpha", 1.0)
    assert triptych.Client().get_run(run.run_id).params["alpha"] == "0.5"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("log_metric", ("bad key!", 1.0)),
        ("log_metric", ("m", "high")),
        ("log_param", ("", 1)),
        ("set_tag", ("../x", "v")),
    ],
)
def test_bad_values_fail_at_the_call(call: str, args: tuple[object, ...]) -> None:
    with triptych.start_run() as run, pytest.raises(InvalidInput):
        getattr(triptych, call)(*args)
    got = triptych.Client().get_run(run.run_id)
    assert (dict(got.metrics), dict(got.params)) == ({}, {})


def test_nan_metric_is_kept() -> None:
    with triptych.start_run() as run:
        triptych.log_metric("loss", float("nan"))
    assert math.isnan(triptych.Client().get_run(run.run_id).metrics["loss"])


def test_text_dict_and_file_artifacts_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00\x01" * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with triptych.start_run() as run:
        triptych.log_text("hello", "notes/hello.txt")
        triptych.log_dict({"alpha": 0.5}, "config.json")
        triptych.log_dict({"alpha": 0.5}, "config.yaml")
        triptych.log_artifact(source, artifact_path="model")
        triptych.log_artifacts(folder, artifact_path="plots")
    client = triptych.Client()
    assert client.read_artifact(run.run_id, "notes/hello.txt") == b"hello"
    assert json.loads(client.read_artifact(run.run_id, "config.json")) == {"alpha": 0.5}
    assert client.read_artifact(run.run_id, "config.yaml") == b"alpha: 0.5\n"
    assert client.read_artifact(run.run_id, "model/weights.bin") == source.read_bytes()
    names = [a.path for a in client.list_artifacts(run.run_id)]
    assert names == ["config.json", "config.yaml", "model", "notes", "plots"]
    out = client.download_artifacts(run.run_id, "plots", tmp_path / "out")
    assert (out / "a.txt").read_text() == "a" and (out / "sub" / "b.txt").read_text() == "b"
    with pytest.raises(NotFound):
        client.read_artifact(run.run_id, "nope.txt")


def test_identical_artifacts_are_stored_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with triptych.start_run() as a:
        triptych.log_text("same bytes", "x.txt")
    with triptych.start_run() as b:
        triptych.log_text("same bytes", "y/x.txt")
    client = triptych.Client()
    assert (
        client.store.get_artifact(a.run_id, "x.txt").digest
        == client.store.get_artifact(b.run_id, "y/x.txt").digest
    )
    blobs = [p for p in (tmp_path / ".triptych" / "artifacts" / "blobs").rglob("*") if p.is_file()]
    assert sum(p.read_bytes() == b"same bytes" for p in blobs) == 1


def test_log_figure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with triptych.start_run() as run:
        triptych.log_figure(fig, "plots/line.png")
        with pytest.raises(InvalidInput, match="matplotlib"):
            triptych.log_figure("not a figure", "x.png")
    plt.close(fig)
    data = triptych.Client().read_artifact(run.run_id, "plots/line.png")
    assert data.startswith(b"\x89PNG")


def test_client_search_and_prefix_lookup() -> None:
    ids = {}
    for alpha in (0.1, 0.5, 1.0):
        with triptych.start_run(experiment="grid") as run:
            triptych.log_param("alpha", alpha)
            triptych.log_metric("mse", 3000 + alpha * 100)
        ids[alpha] = run.run_id
    client = triptych.Client()
    page = client.search_runs(filter_string="metrics.mse < 3060", order_by=["metrics.mse DESC"])
    assert [r.run_id for r in page.items] == [ids[0.5], ids[0.1]]
    assert client.find_run(ids[1.0][:10]).run_id == ids[1.0]
    with pytest.raises(NotFound):
        client.find_run("ffffffffff")


def test_deleted_run_is_hidden_and_restorable() -> None:
    with triptych.start_run(experiment="e") as run:
        pass
    client = triptych.Client()
    client.delete_run(run.run_id)
    assert client.search_runs().items == []
    client.restore_run(run.run_id)
    assert [r.run_id for r in client.search_runs().items] == [run.run_id]


def test_logging_to_deleted_experiment_is_refused() -> None:
    client = triptych.Client()
    eid = client.create_experiment("gone")
    client.delete_experiment(eid)
    with pytest.raises(Conflict, match="deleted"):
        triptych.start_run(experiment="gone")
    assert client.search_runs([eid], include_deleted=True).items == []


def test_buffered_write_errors_surface_at_flush() -> None:
    """A param another client set differently cannot be known at the call; flush says so."""
    with triptych.start_run() as run:
        triptych.Client().log_param(run.run_id, "alpha", "0.1")
        triptych.log_param("alpha", 0.5)
        triptych.log_metric("m", 1.0)
        with pytest.raises(Conflict, match="alpha"):
            triptych.flush()
    got = triptych.Client().get_run(run.run_id)
    assert got.params["alpha"] == "0.1" and got.status is RunStatus.FINISHED


def test_code_diff_is_kept_as_artifact_in_git_checkout(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(
        [*git, "remote", "add", "origin", "https://user:s3cret@example.com/team/repo.git"],
        cwd=repo,
        check=True,
    )
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('v2')\n")
    monkeypatch.chdir(repo)
    with triptych.start_run() as run:
        pass
    got = triptych.Client().get_run(run.run_id)
    assert got.fingerprint is not None
    code = got.fingerprint.code
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    assert code.commit == head.stdout.strip() and code.branch == "main"
    assert code.remote == "https://example.com/team/repo.git"  # credentials never stored
    diff = triptych.Client().read_artifact(run.run_id, DIFF_ARTIFACT).decode()
    assert "-print('v1')" in diff and "+print('v2')" in diff
    assert code.diff_digest is not None


def test_failed_download_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with triptych.start_run() as run:
        triptych.log_text("a", "plots/a.txt")
        triptych.log_text("b", "plots/z/b.txt")
    client = triptych.Client()
    with pytest.raises(NotFound):
        client.download_artifacts(run.run_id, "missing", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    # A destination whose sub-folder is a symlink leaving it: refused before any byte is written.
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst2" / "plots"
    dst.mkdir(parents=True)
    (dst / "z").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside"):
        client.download_artifacts(run.run_id, "plots", tmp_path / "dst2")
    assert list(outside.iterdir()) == [] and not (dst / "a.txt").exists()


def test_abandoned_uploads_are_swept_when_the_store_opens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    from triptych.artifacts.fs import STALE_PART_SECONDS, FsspecArtifactStore

    tmp = tmp_path / "art" / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "old.part", tmp / "fresh.part"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"in flight")
    past = time.time() - STALE_PART_SECONDS - 60
    os.utime(old, (past, past))
    FsspecArtifactStore(str(tmp_path / "art"))
    assert not old.exists() and fresh.exists()  # an upload in flight is left alone
