"""The ray executor on a real local Ray runtime gives the local executor's results."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from triptych.pipelines import run as run_pipeline
from triptych.tracking.client import Client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "pipeline.py"


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    """One local Ray runtime (2 CPUs) for the module: starting one takes seconds."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must install ray (the dev extra): Ray tests may not be skipped")
        pytest.skip("pip install 'triptych[ray]' to run the Ray executor tests")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_the_diabetes_pipeline_gives_the_same_outputs_on_ray(ray_runtime: None) -> None:
    local = run_pipeline(EXAMPLE, cache=False, experiment="local")
    remote = run_pipeline(EXAMPLE, cache=False, executor="ray", experiment="ray")
    client = Client()
    assert remote.status == "FINISHED"
    assert client.get_run(remote.run_id).tags["triptych.pipeline.executor"] == "ray"
    for name in ("ingest", "validate", "split", "train", "evaluate"):
        here = {o["name"]: o["digest"] for o in local.steps[name].outputs}
        there = {o["name"]: o["digest"] for o in remote.steps[name].outputs}
        assert here == there, name  # the model too: its file is byte-identical
    assert local.output("evaluate") == remote.output("evaluate")
    metrics = client.get_run(remote.steps["evaluate"].run_id).metrics
    assert metrics["mse"] == client.get_run(local.steps["evaluate"].run_id).metrics["mse"]
    # the worker's own logging (print, triptych.log_*) landed in the step's run
    validate_log = client.read_artifact(remote.steps["validate"].run_id, "logs.txt").decode()
    assert "pass schema" in validate_log
    # and the second run on Ray is all cache hits
    again = run_pipeline(EXAMPLE, executor="ray", experiment="ray")
    assert {s.cache for s in again.steps.values()} == {"hit"}


def test_a_step_failing_on_ray_fails_the_pipeline_with_its_error(
    ray_runtime: None, tmp_path: Path
) -> None:
    from triptych.errors import StepFailed

    path = tmp_path / "p.py"
    path.write_text(
        "from triptych.pipelines import pipeline, step\n"
        "@step\n"
        "def boom() -> dict:\n"
        "    raise KeyError('missing column')\n"
        "@pipeline\n"
        "def p():\n"
        "    boom()\n"
    )
    with pytest.raises(StepFailed, match="step 'boom' failed: KeyError: 'missing column'") as e:
        run_pipeline(path, executor="ray")
    run = Client().get_run(e.value.result.steps["boom"].run_id)
    assert run.status.value == "FAILED"
    assert "Traceback" in Client().read_artifact(run.run_id, "_triptych/error.txt").decode()
