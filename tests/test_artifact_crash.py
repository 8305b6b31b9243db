"""SIGKILL during log_artifact of a 50 MB file leaves no partial artifact.

A child process starts a run with the fluent API and logs a big file; the parent kills it
with SIGKILL while the copy is still being written under ``<home>/artifacts/tmp/``. Nothing in
triptych is mocked: the only lever is the file size, grown if a copy finishes too fast.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import triptych
from triptych.errors import NotFound

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

MB = 1 << 20
SIZES = (50 * MB, 50 * MB, 100 * MB, 200 * MB, 200 * MB)  # grown when a copy is too quick

CHILD = """
import sys
import triptych

run = triptych.start_run(experiment="crash", run_id=sys.argv[2] if len(sys.argv) > 2 else None)
print(run.run_id, flush=True)
entry = triptych.log_artifact(sys.argv[1])
print(entry.digest, flush=True)
triptych.end_run()
"""


def _child(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=home.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for start in range(0, size, 4 * MB):
            chunk = os.urandom(min(4 * MB, size - start))
            h.update(chunk)
            f.write(chunk)
    assert path.stat().st_size == size
    return h.hexdigest()


def _parts(tmp: Path) -> list[Path]:
    try:
        return [tmp / e.name for e in os.scandir(tmp) if e.name.endswith(".part")]
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place in the meantime
        return -1


def _kill_mid_write(home: Path, big: Path, size: int) -> tuple[str, Path] | None:
    """Run a child that logs ``big``; SIGKILL it as soon as its copy shows up in tmp/.
    Returns (run id, the partial copy), or None when the copy finished before the kill."""
    tmp = home / "artifacts" / "tmp"
    before = set(_parts(tmp))
    child = _child(home, str(big))
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()  # the run exists; the copy starts next
        assert run_id, child.communicate()[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = set(_parts(tmp)) - before
            if any(_size(p) > 0 for p in new):  # bytes are being copied: kill it now
                child.send_signal(signal.SIGKILL)
                break
            if child.poll() is not None:
                return None  # finished (or failed) before we saw the copy
            time.sleep(0.001)
        else:  # pragma: no cover
            pytest.fail("the child never started copying")
        child.wait(timeout=30)
    finally:
        if child.poll() is None:  # pragma: no cover - only when an assertion failed above
            child.kill()
            child.wait()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    (part,) = new
    if not 0 < _size(part) < size:
        return None  # the kill landed after the copy was complete
    return run_id, part


def _blobs(home: Path) -> dict[str, int]:
    root = home / "artifacts" / "blobs"
    return {p.name: p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_sigkill_during_log_artifact_leaves_no_partial_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    big = tmp_path / "weights.bin"
    for size in SIZES:
        if not big.exists() or big.stat().st_size != size:
            digest = _write_random(big, size)
        killed = _kill_mid_write(home, big, size)
        if killed is not None:
            break
    else:  # pragma: no cover
        pytest.fail(f"no SIGKILL landed mid-write in {len(SIZES)} attempts")
    run_id, part = killed
    partial = part.stat().st_size
    assert 0 < partial < size  # the kill did land mid-write

    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    client = triptych.Client()
    assert client.get_run(run_id).run_id == run_id
    assert client.list_artifacts(run_id) == []
    blobs = _blobs(home)
    assert digest not in blobs
    assert partial not in blobs.values() and size not in blobs.values()
    for name, _ in blobs.items():  # whatever else is stored is complete and verifies
        client.artifacts.get_bytes(name)
    with pytest.raises(NotFound):
        client.read_artifact(run_id, big.name)
    with pytest.raises(NotFound):
        client.download_artifacts(run_id, big.name, tmp_path / "dl")
    assert not (tmp_path / "dl" / big.name).exists()

    # The leftover copy breaks nothing: the same file logs completely into the same run.
    child = _child(home, str(big), run_id)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.split() == [run_id, digest]
    assert part.exists()  # the killed copy is still there, ignored
    (entry,) = client.list_artifacts(run_id)
    assert (entry.path, entry.digest, entry.size) == (big.name, digest, size)
    copy = client.download_artifacts(run_id, big.name, tmp_path / "dl")  # verifies the digest
    assert copy.stat().st_size == size
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    assert _blobs(home)[digest] == size
