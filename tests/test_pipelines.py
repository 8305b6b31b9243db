"""Pipelines: the DSL, parameters, step runs, failures, retries and parallelism (caching and
replay: test_pipeline_cache.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_kit import BASIC, caches, write
from triptych.errors import InvalidInput, NotFound, StepFailed
from triptych.pipelines import pipeline, step
from triptych.pipelines import run as run_pipeline
from triptych.pipelines.runner import TAG_PARENT, TAG_STEP
from triptych.tracking.client import Client


# -- the DSL --------------------------------------------------------------------------------
def test_graph_is_inferred_from_the_calls(tmp_path: Path) -> None:
    from triptych.pipelines import load

    graph = load(write(tmp_path, BASIC)).trace()
    assert list(graph.nodes) == ["make", "halves", "total", "total_2"]
    assert graph.nodes["halves"].upstream == ["make"]
    assert graph.nodes["total"].inputs["df"].name == "low"
    assert graph.nodes["total_2"].inputs["df"].name == "high"
    assert graph.downstream("halves") == {"total", "total_2"}


def test_a_step_outside_a_pipeline_is_the_plain_function() -> None:
    @step
    def double(x: int) -> int:
        return 2 * x

    assert double(21) == 42


def test_dsl_mistakes_are_clear() -> None:
    @step
    def one() -> int:
        return 1

    @step
    def takes(a: int, b: int = 0) -> int:
        return a + b

    @pipeline
    def unpack():
        _a, _b = one()

    with pytest.raises(InvalidInput, match="one output, which cannot be unpacked"):
        unpack.trace()

    @pipeline
    def not_json():
        takes(one(), b=object())

    with pytest.raises(InvalidInput, match="neither a step output nor a JSON parameter"):
        not_json.trace()

    @pipeline
    def branch():
        if one():
            takes(1)

    with pytest.raises(InvalidInput, match="branch inside a step"):
        branch.trace()

    @pipeline
    def empty():
        pass

    with pytest.raises(InvalidInput, match="calls no step"):
        empty.trace()

    with pytest.raises(InvalidInput, match="must be named"):

        @step
        def star(*args: int) -> int:
            return 0


def test_loading_a_file_needs_exactly_one_pipeline(tmp_path: Path) -> None:
    from triptych.pipelines import load

    with pytest.raises(NotFound, match="no pipeline file"):
        load(tmp_path / "missing.py")
    two = write(tmp_path, BASIC + "\n@pipeline\ndef other():\n    make()\n", name="two.py")
    with pytest.raises(InvalidInput, match="defines 2 @pipeline"):
        load(two)
    assert load(f"{two}:other").name == "other"
    with pytest.raises(NotFound, match="no @pipeline named 'nope'"):
        load(f"{two}:nope")


# -- parameters -----------------------------------------------------------------------------
def test_params_yaml_and_overrides_take_precedence(tmp_path: Path) -> None:
    from triptych.pipelines import load

    path = write(
        tmp_path, BASIC, params="make:\n  n: 10\ntotal:\n  scale: 2\nother_tool:\n  x: 1\n"
    )
    plan = load(path).plan()
    assert plan.params["make"] == {"n": 10}
    assert plan.params["total"] == {"scale": 2} and plan.params["total_2"] == {"scale": 1.0}
    plan = load(path).plan({"make.n": 3, "total_2.scale": 0.5})
    assert plan.params["make"] == {"n": 3} and plan.params["total_2"] == {"scale": 0.5}
    plan = load(path).plan({"n": 4})  # one step takes n: unambiguous
    assert plan.params["make"] == {"n": 4}


def test_bad_params_fail_before_anything_runs(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC, params="total:\n  scael: 2\n")
    with pytest.raises(InvalidInput, match="step 'total' takes no parameter 'scael'"):
        run_pipeline(path)
    (tmp_path / "params.yaml").unlink()
    with pytest.raises(InvalidInput, match="2 steps take 'scale'"):
        run_pipeline(path, params={"scale": 3})
    with pytest.raises(InvalidInput, match="there is no step 'trian'"):
        run_pipeline(path, params={"trian.alpha": 3})
    with pytest.raises(InvalidInput, match="no step takes 'alpha'"):
        run_pipeline(path, params={"alpha": 3})
    assert Client().search_runs().items == []  # nothing was recorded


def test_a_required_parameter_must_be_given(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        from triptych.pipelines import pipeline, step

        @step
        def needs(alpha: float) -> dict:
            return {"alpha": alpha}

        @pipeline
        def p():
            needs()
        """,
    )
    with pytest.raises(InvalidInput, match="needs the parameter 'alpha'") as e:
        run_pipeline(path)
    assert "--param needs.alpha=VALUE" in str(e.value)
    result = run_pipeline(path, params={"needs.alpha": 0.5})
    assert result.output("needs") == {"alpha": 0.5}


# -- runs -----------------------------------------------------------------------------------
def test_each_step_is_a_nested_run_with_params_outputs_logs_and_metrics(tmp_path: Path) -> None:
    result = run_pipeline(write(tmp_path, BASIC))
    assert result.status == "FINISHED"
    client = Client()
    parent = client.get_run(result.run_id)
    assert parent.tags["triptych.pipeline.name"] == "demo"
    assert parent.tags["triptych.pipeline.file"] == "pipe.py"
    assert parent.params["make.n"] == "6" and parent.params["total.scale"] == "1.0"
    steps = {
        r.tags[TAG_STEP]: r for r in client.search_runs().items if r.parent_run_id == result.run_id
    }
    assert set(steps) == {"make", "halves", "total", "total_2"}
    assert all(r.tags[TAG_PARENT] == result.run_id for r in steps.values())
    make = steps["make"]
    assert make.params["n"] == "6"
    assert make.end_time is not None and float(make.tags["triptych.step.duration"]) >= 0
    assert "making 6" in client.read_artifact(make.run_id, "logs.txt").decode()
    assert steps["total"].metrics["total"] == 3.0 and steps["total_2"].metrics["total"] == 12.0
    assert result.output("total_2") == {"total": 12.0}
    low = result.output("halves", "low")
    assert list(low.x) == [0, 1, 2]
    outputs = json.loads(client.read_artifact(steps["halves"].run_id, "_triptych/outputs.json"))
    assert [o["name"] for o in outputs["outputs"]] == ["low", "high"]


def test_values_round_trip_without_pickle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        from pathlib import Path
        import numpy as np
        import pandas as pd
        from sklearn.linear_model import LinearRegression
        from triptych.models.model import Model
        from triptych.pipelines import pipeline, step

        @step(outputs=("series", "array", "raw", "doc", "folder", "model"))
        def produce() -> tuple:
            Path("out").mkdir()
            Path("out/a.txt").write_text("hello")
            Path("out/sub").mkdir()
            Path("out/sub/b.txt").write_text("world")
            model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), [1.0, 3.0, 5.0])
            return (pd.Series([1.5, 2.5], name="s"), np.arange(6).reshape(2, 3), b"\\x00\\x01",
                    Path("out/a.txt"), Path("out"), model)

        @step
        def consume(series: pd.Series, array: np.ndarray, raw: bytes, doc: Path,
                    folder: Path, model: Model) -> dict:
            return {
                "series": [series.name, series.tolist()],
                "array": array.tolist(),
                "raw": list(raw),
                "doc": doc.read_text(),
                "folder": sorted(str(p.relative_to(folder)) for p in folder.rglob("*.txt")),
                "model": model.predict(pd.DataFrame({"x": [3.0]})).tolist(),
            }

        @pipeline
        def kinds():
            consume(*produce())
        """,
    )
    result = run_pipeline(path)
    got = result.output("consume")
    assert got["series"] == ["s", [1.5, 2.5]]
    assert got["array"] == [[0, 1, 2], [3, 4, 5]]
    assert got["raw"] == [0, 1]
    assert got["doc"] == "hello"
    assert got["folder"] == ["a.txt", "sub/b.txt"]
    assert got["model"] == pytest.approx([7.0])


def test_an_unstorable_output_fails_the_step_clearly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import numpy as np
        from triptych.pipelines import pipeline, step

        @step
        def weird() -> object:
            return {1, 2}

        @step
        def objects() -> object:
            return np.array([object()])

        @pipeline
        def p():
            weird()
            objects()
        """,
    )
    with pytest.raises(StepFailed) as e:
        run_pipeline(path)
    result = e.value.result
    assert "cannot store safely" in result.steps["weird"].error
    assert "without pickle" in result.steps["objects"].error


def test_a_return_annotation_is_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import pandas as pd
        from triptych.pipelines import pipeline, step

        @step
        def lies() -> pd.DataFrame:
            return {"not": "a frame"}

        @step(outputs=("a", "b"))
        def pair() -> tuple[int, int]:
            return 1

        @pipeline
        def p():
            lies()
            pair()
        """,
    )
    with pytest.raises(StepFailed) as e:
        run_pipeline(path)
    steps = e.value.result.steps
    assert "returned a dict as 'output', but is annotated DataFrame" in steps["lies"].error
    assert "declares outputs a, b but returned int" in steps["pair"].error


# -- failures, retries, parallelism ---------------------------------------------------------
FLAKY = """
import os
from pathlib import Path
from triptych.pipelines import pipeline, step

@step
def first() -> dict:
    return {"v": 1}

@step
def boom(x: dict) -> dict:
    if os.environ.get("BOOM") == "1":
        raise ValueError("the data is bad")
    return {"v": x["v"] + 1}

@step
def after(x: dict) -> dict:
    return {"v": x["v"] * 10}

@step
def side() -> dict:
    return {"side": True}

@pipeline
def flaky():
    after(boom(first()))
    side()
"""


def test_a_failed_step_fails_the_pipeline_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FLAKY)
    monkeypatch.setenv("BOOM", "1")
    with pytest.raises(StepFailed, match="step 'boom' failed: ValueError: the data is bad") as e:
        run_pipeline(path)
    result = e.value.result
    assert result.status == "FAILED"
    states = {n: s.status for n, s in result.steps.items()}
    assert states == {"first": "finished", "boom": "failed", "after": "skipped", "side": "finished"}
    client = Client()
    failed = client.get_run(result.steps["boom"].run_id)
    assert failed.status.value == "FAILED"
    assert failed.tags["triptych.error"] == "ValueError: the data is bad"
    trace = client.read_artifact(failed.run_id, "_triptych/error.txt").decode()
    assert "Traceback" in trace and 'raise ValueError("the data is bad")' in trace
    assert client.get_run(result.run_id).status.value == "FAILED"
    assert result.steps["after"].run_id is None  # a skipped step leaves no run

    monkeypatch.setenv("BOOM", "0")
    again = run_pipeline(path)
    assert caches(again) == {"first": "hit", "boom": "miss", "after": "miss", "side": "hit"}
    assert again.output("after") == {"v": 20}


def test_retries_rerun_a_failing_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        from pathlib import Path
        from triptych.pipelines import pipeline, step

        @step(retries=2, retry_delay=0)
        def wobbly() -> dict:
            counter = Path("attempts")
            n = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(n))
            if n < 3:
                raise ConnectionError(f"attempt {n}")
            return {"attempts": n}

        @pipeline
        def p():
            wobbly()
        """,
    )
    result = run_pipeline(path)
    assert result.output("wobbly") == {"attempts": 3}
    run = Client().get_run(result.steps["wobbly"].run_id)
    assert run.tags["triptych.step.attempts"] == "3"
    log = Client().read_artifact(run.run_id, "logs.txt").decode()
    assert "attempt 1 failed (ConnectionError: attempt 1); retrying" in log


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import threading, time
        from triptych.pipelines import pipeline, step

        @step(cache=False)
        def window(i: int = 0) -> dict:
            start = time.time()
            time.sleep(0.4)
            return {"start": start, "end": time.time()}

        @pipeline
        def p():
            window(i=1)
            window(i=2)
        """,
    )
    result = run_pipeline(path, workers=2)
    a, b = result.output("window"), result.output("window_2")
    assert a["start"] < b["end"] and b["start"] < a["end"], "the two steps did not overlap"


def test_the_pipeline_function_takes_its_own_parameters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        from triptych.pipelines import pipeline, step

        @step
        def square(x: int = 0) -> int:
            return x * x

        @pipeline
        def fan(width: int = 2):
            for i in range(width):
                square(x=i)
        """,
        params="fan:\n  width: 3\n",
    )
    result = run_pipeline(path)
    assert list(result.steps) == ["square", "square_2", "square_3"]
    assert result.output("square_3") == 4
    assert Client().get_run(result.run_id).params["fan.width"] == "3"
    result = run_pipeline(path, params={"fan.width": 1})
    assert list(result.steps) == ["square"]
    with pytest.raises(InvalidInput, match="takes no parameter 'depth'"):
        run_pipeline(path, params={"fan.depth": 1})
