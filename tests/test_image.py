"""``triptych build-image``: the build context, checked without docker."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

import triptych
from triptych.errors import InvalidInput
from triptych.models import registry
from triptych.release import image

SECRET = "s3cr3t-sentinel-value"


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A registered model, in a project whose settings and environment hold secrets."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    (tmp_path / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={SECRET}\n")
    (tmp_path / "triptych.toml").write_text(
        f'# token {SECRET}\ns3_endpoint_url = "http://key:{SECRET}@127.0.0.1:9"\n'
    )
    frame = pd.DataFrame({"age": [0.1, 0.2, 0.3, 0.4], "bmi": [1.0, 0.5, 0.2, 0.1]})
    with triptych.start_run() as run:
        fitted = Ridge().fit(frame, [1.0, 2.0, 3.0, 4.0])
        logged = triptych.log_model(fitted, "models/ridge", input_example=frame.head(2))
    registry.register(logged.uri, "diabetes")
    return {"run_id": run.run_id, "uri": logged.uri, "home": str(tmp_path / "home")}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_context_holds_the_model_pins_and_dockerfile(model: dict[str, str], tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    result = image.build_image("models:/diabetes/1", "diabetes:1", context=context, build=False)
    assert (result.built, result.reason, result.context) == (
        False,
        "--no-build",
        str(context.resolve()),
    )
    found = files(context)
    assert {
        "Dockerfile",
        "requirements.txt",
        ".dockerignore",
        "model/manifest.json",
        "model/model.skops",
        "model/input_example.json",
        "triptych/__init__.py",
        "triptych/release/boot.py",
        "triptych/serving/predlog.py",
    } <= found
    assert not [f for f in found if f.endswith((".pyc", ".db", ".env", ".toml"))]
    # The model file is the one logged, byte for byte.
    manifest = json.loads((context / "model/manifest.json").read_text())
    digest = hashlib.sha256((context / "model/model.skops").read_bytes()).hexdigest()
    assert digest == manifest["model_file"]["sha256"]

    # Pins come from the environment the model was trained in.
    run = triptych.Client().get_run(model["run_id"])
    assert run.fingerprint is not None
    recorded = triptych.Client().get_environment(run.fingerprint.env_digest).packages
    lines = (context / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert pins["scikit-learn"] == recorded["scikit-learn"]
    assert pins["skops"] == recorded["skops"] and pins["numpy"] == recorded["numpy"]
    assert {"pandas", "pyarrow", "sqlalchemy", "typer"} <= set(pins)
    assert result.requirements == [line for line in lines if not line.startswith("#")]

    dockerfile = (context / "Dockerfile").read_text()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM python:{python}-slim" in dockerfile
    assert f'"serve", "runs:/{model["run_id"]}/models/ridge", "--host", "0.0.0.0"' in dockerfile
    assert "USER triptych" in dockerfile and "EXPOSE 8080" in dockerfile
    assert "COPY requirements.txt" in dockerfile.split("COPY triptych")[0]  # deps layer first

    for name in found:  # no secret from the settings or the environment reaches the image
        assert SECRET not in (context / name).read_text(errors="replace"), name


def test_the_image_boot_step_serves_the_same_files(model: dict[str, str], tmp_path: Path) -> None:
    """What the Dockerfile's RUN step does, run here against a fresh store."""
    context = tmp_path / "ctx"
    image.write_context(model["uri"], "x:1", context)
    fresh = tmp_path / "image-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(fresh)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "triptych.release.boot",
            str(context / "model"),
            model["run_id"],
            "models/ridge",
            "models:/diabetes/1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == model["uri"]
    inside = triptych.Client(f"sqlite:///{fresh}/triptych.db", str(fresh / "artifacts"))
    loaded = triptych.load_model(model["uri"], client=inside)
    rows = pd.DataFrame({"age": [0.5], "bmi": [0.3]})
    original = triptych.load_model(model["uri"])
    np.testing.assert_array_equal(loaded.predict(rows), original.predict(rows))


def test_refuses_bad_tags_and_used_folders(model: dict[str, str], tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        image.build_image(model["uri"], "ok:1", context=used, build=False)
    assert files(used) == {"keep.txt"} and (used / "keep.txt").read_text() == "mine"
    for tag in ("Bad Tag", "x;rm -rf /", "a:b:c", ""):
        with pytest.raises(InvalidInput, match="not a valid image name"):
            image.build_image(model["uri"], tag, context=tmp_path / "never", build=False)
    assert not (tmp_path / "never").exists()


def test_without_docker_the_context_is_written_and_the_reason_given(
    model: dict[str, str], tmp_path: Path
) -> None:
    problem = image.docker_problem()
    if problem is None:
        pytest.skip("docker works here; building an image needs its base image from a registry")
    result = image.build_image(model["uri"], "diabetes:1", context=tmp_path / "ctx")
    assert result.built is False and result.reason == problem
    assert (tmp_path / "ctx" / "Dockerfile").exists()


def test_cli_writes_the_context_and_prints_json(model: dict[str, str], tmp_path: Path) -> None:
    env = dict(os.environ)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "triptych",
            "build-image",
            "models:/diabetes/1",
            "--tag",
            "d:1",
            "--context",
            str(tmp_path / "c"),
            "--no-build",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["built"] is False and data["context"] == str((tmp_path / "c").resolve())
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "triptych",
            "build-image",
            "models:/nope/1",
            "--tag",
            "d:1",
            "--no-build",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
