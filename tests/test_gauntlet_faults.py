"""Fault gauntlet: a full disk and SIGKILL mid-upload leave no partial artifact and no
changed store, say clearly what happened, and a retry succeeds.

The disk is real: a 1 MiB tmpfs mounted for the test (the suite runs as root in CI; elsewhere
these tests skip and say why). The kills are real: SIGKILL of a child process uploading a large
file, to the ``file://`` store and to a team server on loopback. Nothing in triptych is mocked.
The number of faults injected is printed at the end of the run.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import triptych
import triptych.data as datasets
from postgres_kit import PrivatePostgres
from triptych.artifacts.fs import FsspecArtifactStore
from triptych.errors import StoreUnavailable
from triptych.store.entities import RunSpec
from triptych.store.sql.store import SqlStore
from triptych.testing import reset_process_state

FAULTS = "faults injected"


@pytest.fixture
def fault(gauntlet: dict[str, int]) -> Callable[[], None]:
    def add() -> None:
        gauntlet[FAULTS] = gauntlet.get(FAULTS, 0) + 1

    return add


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        reset_process_state()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


# -- disk full ------------------------------------------------------------------------------
def test_disk_full_during_an_artifact_write(
    small_disk: Path, tmp_path: Path, fault: Callable[[], None]
) -> None:
    root = small_disk / "artifacts"
    client = triptych.Client(f"sqlite:///{tmp_path / 'store.db'}", str(root))
    run_id = client.create_run(client.create_experiment("faults"), capture=False).run_id
    client.log_bytes(run_id, b"small", "small.txt")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))  # three times the disk
    blobs, tree, free = _files(root), client.store.walk_artifacts(run_id), _free(small_disk)

    with pytest.raises(StoreUnavailable) as full:
        client.log_artifact(run_id, big)
    fault()
    assert "No space left on device" in str(full.value) and "disk" in (full.value.hint or "")
    assert _files(root) == blobs  # no partial blob, no temp file left behind
    assert _free(small_disk) == free  # the space of the attempt is given back
    assert client.store.walk_artifacts(run_id) == tree  # the store unchanged

    # a dataset too big for the disk: nothing recorded
    frame = pd.DataFrame(np.random.default_rng(0).random((60_000, 8)))
    frame.columns = [f"c{i}" for i in range(8)]
    with pytest.raises(StoreUnavailable, match="No space left"):
        datasets.add("big", frame, client=client)
    fault()
    assert client.store.list_datasets() == [] and _files(root) == blobs

    # the store still works once the write fits
    client.log_bytes(run_id, b"again", "again.txt")
    assert client.read_artifact(run_id, "again.txt") == b"again"
    assert [e.path for e in client.store.walk_artifacts(run_id)] == ["again.txt", "small.txt"]


def test_disk_full_under_the_metadata_store(small_disk: Path, fault: Callable[[], None]) -> None:
    store = SqlStore(f"sqlite:///{small_disk / 'store.db'}")
    try:
        experiment = store.create_experiment("faults")
        filler = small_disk / "filler"
        with open(filler, "wb") as f:  # take every free block
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        written: list[str] = []
        with pytest.raises(StoreUnavailable) as full:
            for i in range(2000):
                params = {f"p{j}": "v" * 200 for j in range(40)}
                written.append(
                    store.create_run(RunSpec(experiment, name=f"r{i}", params=params)).run_id
                )
        fault()
        assert "database or disk is full" in str(full.value)
        assert "free space" in (full.value.hint or "")
        # every run that was acknowledged is whole; the one that failed left nothing
        runs = store.search_runs([experiment], max_results=5000).items
        assert sorted(r.run_id for r in runs) == sorted(written)
        assert all(len(r.params) == 40 for r in runs)
        filler.unlink()
        run = store.create_run(RunSpec(experiment, name="after", params={"a": "1"}))
        assert store.get_run(run.run_id).params == {"a": "1"}
    finally:
        store.close()


# -- SIGKILL mid-upload -----------------------------------------------------------------------
CHILD = """
import sys
import triptych
triptych.Client().log_artifact(sys.argv[1], sys.argv[2])
"""
HTTP_CHILD = """
import sys
from pathlib import Path
from triptych.artifacts import http
if sys.argv[3:] == ["whole"]:
    http.RESUMABLE_AT = 1 << 62  # one streamed PUT, not resumable chunks
from triptych.artifacts.http import HttpArtifactStore
HttpArtifactStore(sys.argv[1]).put_file(Path(sys.argv[2]))
"""


def _kill_when(args: list[str], env: dict[str, str], parts: Path, pattern: str, at: int) -> bool:
    """Start a child, SIGKILL it by its pid once a ``pattern`` file under ``parts`` holds
    ``at`` bytes; False when the child finished first."""
    child = subprocess.Popen([sys.executable, "-c", *args], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if child.poll() is not None:
                return False
            for part in parts.glob(pattern) if parts.is_dir() else ():
                try:
                    if part.stat().st_size >= at:
                        os.kill(child.pid, signal.SIGKILL)
                        child.wait(timeout=30)
                        return True
                except FileNotFoundError:
                    continue
            time.sleep(0.0005)
        raise AssertionError("the upload never started")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _big_file(path: Path, size: int) -> str:
    data = os.urandom(1 << 20) * (size >> 20)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_sigkill_mid_upload_to_the_file_store_leaves_nothing_visible(
    tmp_path: Path, fault: Callable[[], None]
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "TRIPTYCH_HOME": str(home)}
    os.environ["TRIPTYCH_HOME"] = str(home)
    try:
        client = triptych.Client()
    finally:
        del os.environ["TRIPTYCH_HOME"]
    run_id = client.create_run(client.create_experiment("kills"), capture=False).run_id
    big = tmp_path / "big.bin"
    digest = _big_file(big, 256 << 20)
    parts = Path(client.settings.artifact_uri) / "tmp"
    kills = 0
    for at in (1 << 20, 64 << 20, 192 << 20):  # early, midway, nearly done
        if _kill_when([CHILD, run_id, str(big)], env, parts, "*.part", at):
            kills += 1
            fault()
            assert client.store.walk_artifacts(run_id) == []  # nothing recorded
            assert not client.artifacts.exists(digest)  # no blob under the digest
            with pytest.raises(Exception):  # noqa: B017 - NotFound or IntegrityError
                client.artifacts.get_bytes(digest)
    assert kills >= 2, "the copies finished before they could be killed"
    # what the kills left is only in tmp/ (swept after a day), never a blob
    blobs = Path(client.settings.artifact_uri) / "blobs"
    assert not blobs.exists() or _files(blobs) == set()

    entry = client.log_artifact(run_id, big)  # the retry succeeds
    assert entry.digest == digest and entry.size == big.stat().st_size
    out = client.download_artifacts(run_id, "big.bin", tmp_path / "back")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest


@dataclass
class Upload:
    """A live server over a file artifact store, and a 128 MiB file for a child to upload."""

    url: str
    behind: FsspecArtifactStore
    spool: Path  # the server's temp folder: where uploads are spooled or kept for resuming
    big: Path
    digest: str

    def kill_child_when(self, pattern: str, *extra: str) -> None:
        """Upload from a child process and SIGKILL it once ``pattern`` holds 32 MiB."""
        killed = _kill_when(
            [HTTP_CHILD, self.url, str(self.big), *extra],
            dict(os.environ),
            self.spool,
            pattern,
            32 << 20,
        )
        assert killed, "the upload finished before it could be killed"

    def retry(self) -> None:
        """The same upload again, from this process: it succeeds."""
        from triptych.artifacts.http import HttpArtifactStore

        remote = HttpArtifactStore(self.url)
        try:
            assert remote.put_file(self.big).digest == self.digest
        finally:
            remote._http.close()
        assert self.behind.exists(self.digest)


@pytest.fixture
def upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upload]:
    from triptych.testing.server import LiveServer

    spool = tmp_path / "server-tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    behind = FsspecArtifactStore(str(tmp_path / "server-artifacts"))
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    big = tmp_path / "big.bin"
    digest = _big_file(big, 128 << 20)
    try:
        with LiveServer(store, behind) as server:
            yield Upload(server.url, behind, spool, big, digest)
    finally:
        store.close()


def test_sigkill_of_a_client_mid_upload_to_the_server_stores_nothing(
    upload: Upload, fault: Callable[[], None]
) -> None:
    upload.kill_child_when("triptych-upload-*", "whole")  # one streamed PUT
    fault()
    deadline = time.monotonic() + 20
    while any(upload.spool.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the broken body and cleans up
    assert list(upload.spool.iterdir()) == []
    assert not upload.behind.exists(upload.digest)
    upload.retry()


def test_sigkill_of_a_client_mid_chunked_upload_keeps_only_a_private_partial(
    upload: Upload, fault: Callable[[], None]
) -> None:
    """Large files go up in resumable chunks: a killed client leaves a partial upload in the
    server's private upload folder (never a visible blob), and the retry resumes from it."""
    from triptych.artifacts.base import digest_file
    from triptych.artifacts.http import HttpArtifactStore

    upload.kill_child_when("triptych-uploads-*/*.part")
    fault()
    assert not upload.behind.exists(upload.digest)
    (folder,) = upload.spool.glob("triptych-uploads-*")
    assert folder.stat().st_mode & 0o777 == 0o700
    (part,) = folder.glob("*.part")
    held = part.stat().st_size
    assert held >= 32 << 20
    remote = HttpArtifactStore(upload.url)
    try:
        assert remote._held(digest_file(upload.big)) == held  # what a retry resumes from
    finally:
        remote._http.close()
    upload.retry()
    assert list(folder.glob("*.part")) == []


# -- a PostgreSQL restart mid-run -------------------------------------------------------------
OUTAGE = 12.0  # longer than the store's own retries (about 10 s at most): the writer must keep
# the points itself


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        reset_process_state()
        server.close()


@pytest.mark.parametrize("through", ["direct", "server"])
def test_a_postgres_restart_mid_run_loses_no_metric(
    private_postgres: PrivatePostgres,
    through: str,
    tmp_path: Path,
    fault: Callable[[], None],
    gauntlet: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database goes away in the middle of a training loop and comes back: the loop never
    sees an error, the client keeps what it logged meanwhile, and every point arrives."""
    from contextlib import ExitStack

    from triptych.store.entities import RunStatus
    from triptych.testing.server import LiveServer

    with ExitStack() as stack:
        store = SqlStore(private_postgres.url)
        stack.callback(store.close)
        uri = private_postgres.url
        if through == "server":
            uri = stack.enter_context(LiveServer(store)).url
        triptych.set_tracking_uri(uri, str(tmp_path / "artifacts"))
        logged = 0
        with triptych.start_run(experiment="restarts") as run:
            for step in range(200):
                run.log_metric("loss", 1 / (step + 1), step=step)
                logged += 1
            run.flush()  # the first points are in before the outage
            private_postgres.stop()
            fault()
            down_until = time.monotonic() + OUTAGE
            while time.monotonic() < down_until:  # the loop goes on while the database is down
                run.log_metric("loss", 1 / (logged + 1), step=logged)
                logged += 1
                time.sleep(0.01)
            private_postgres.start()
        # the run ended after the restart: its buffer and status went in then
        assert any("unreachable" in r.getMessage() for r in caplog.records)
        kept = store.get_metric_history(run.run_id, "loss")
        lost = logged - len(kept)
        gauntlet["rows lost"] = gauntlet.get("rows lost", 0) + lost
        assert lost == 0
        assert [m.step for m in kept] == list(range(logged))
        assert store.get_run(run.run_id).status is RunStatus.FINISHED
