"""Pipeline caching: what a second run reuses, what an edit or a parameter reruns, and the
replay of an unchanged pipeline without importing it."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit import BASIC, caches, write
from triptych.pipelines import run as run_pipeline
from triptych.pipelines.runner import TAG_CACHE
from triptych.tracking.client import Client


# -- caching --------------------------------------------------------------------------------
def test_a_second_run_reuses_every_step(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    first = run_pipeline(path)
    assert set(caches(first).values()) == {"miss"}
    second = run_pipeline(path)
    assert set(caches(second).values()) == {"hit"}
    client = Client()
    for name, state in second.steps.items():
        hit = client.get_run(state.run_id)
        assert hit.parent_run_id == second.run_id and hit.tags[TAG_CACHE] == "hit"
        assert hit.tags["triptych.step.cached_from"] == first.steps[name].run_id
    assert client.get_run(second.steps["total"].run_id).metrics["total"] == 3.0
    assert second.output("total_2") == {"total": 12.0}
    third = run_pipeline(path)  # a hit of a hit points at the run that computed it
    assert client.get_run(third.steps["make"].run_id).tags["triptych.step.cached_from"] == (
        first.steps["make"].run_id
    )


def test_changing_a_parameter_reruns_exactly_the_steps_downstream(tmp_path: Path) -> None:
    from triptych.pipelines import load

    path = write(tmp_path, BASIC)
    run_pipeline(path)
    changed = run_pipeline(path, params={"total.scale": 2})
    assert caches(changed) == {"make": "hit", "halves": "hit", "total": "miss", "total_2": "hit"}
    changed = run_pipeline(path, params={"make.n": 8})
    graph = load(path).trace()
    expect = {"make"} | graph.downstream("make")
    assert {n for n, c in caches(changed).items() if c == "miss"} == expect


def test_equal_outputs_stop_the_rerun_early(tmp_path: Path) -> None:
    """An upstream re-run that produces the same bytes leaves downstream cached."""
    path = write(
        tmp_path,
        """
        from triptych.pipelines import pipeline, step

        @step
        def parity(n: int = 2) -> dict:
            return {"even": n % 2 == 0}

        @step
        def report(p: dict) -> str:
            return "even" if p["even"] else "odd"

        @pipeline
        def p():
            report(parity())
        """,
    )
    run_pipeline(path)
    again = run_pipeline(path, params={"parity.n": 4})
    assert caches(again) == {"parity": "miss", "report": "hit"}


def test_no_cache_and_cache_false_compute_again(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC.replace("@step\ndef make", "@step(cache=False)\ndef make"))
    run_pipeline(path)
    second = run_pipeline(path)
    assert caches(second)["make"] == "off"
    assert caches(second)["halves"] == "hit"  # same bytes from make: still cached
    third = run_pipeline(path, cache=False)
    assert set(caches(third).values()) == {"off"}


def test_editing_a_step_reruns_it_and_not_its_neighbours(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    run_pipeline(path)
    path.write_text(
        path.read_text().replace(
            "value = float(df.x.sum()) * scale", "value = float(df.x.sum()) * scale + 0"
        )
    )
    again = run_pipeline(path)
    assert caches(again) == {"make": "hit", "halves": "hit", "total": "miss", "total_2": "miss"}


def test_editing_a_project_module_a_step_imports_reruns_it(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text("def scale():\n    return 2\n")
    path = write(
        tmp_path,
        """
        from features import scale
        from triptych.pipelines import pipeline, step

        @step
        def f() -> dict:
            return {"v": scale()}

        @pipeline
        def p():
            f()
        """,
    )
    run_pipeline(path)
    assert caches(run_pipeline(path)) == {"f": "hit"}
    (tmp_path / "features.py").write_text("def scale():\n    return 3\n")
    import sys

    sys.modules.pop("features", None)
    path.touch()  # the pipeline module is imported again, with the new features
    result = run_pipeline(path)
    assert caches(result) == {"f": "miss"} and result.output("f") == {"v": 3}


def test_a_cache_hit_whose_outputs_are_gone_computes_again(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    first = run_pipeline(path)
    client = Client()
    digest = first.steps["make"].outputs[0]["digest"]
    client.artifacts.delete(digest)
    second = run_pipeline(path)
    assert caches(second)["make"] == "miss"
    assert client.artifacts.exists(digest)  # the same bytes are back


# -- replaying an unchanged pipeline without importing it ----------------------------------
COUNTED = """
from pathlib import Path
import pandas as pd
from triptych.pipelines import pipeline, step

with open("imports.log", "a") as log:  # a side effect of importing this file
    log.write("imported\\n")

@step
def make(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n))})

@step
def total(df: pd.DataFrame) -> dict:
    return {"total": int(df.x.sum())}

@pipeline
def counted():
    total(make())
"""


def forget() -> None:
    """Drop the imported pipeline module, as a new process would start without it."""
    import sys

    sys.modules.pop("triptych_pipeline_pipe", None)


def imports(folder: Path) -> int:
    log = folder / "imports.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_an_unchanged_pipeline_is_replayed_without_importing_it(tmp_path: Path) -> None:
    import sys

    path = write(tmp_path, COUNTED, params="make:\n  n: 4\n")
    first = run_pipeline(path)
    assert imports(tmp_path) == 1
    sys.modules.pop("triptych_pipeline_pipe", None)  # as a new process would be
    second = run_pipeline(str(path))
    assert imports(tmp_path) == 1, "the file was imported again"
    assert caches(second) == {"make": "hit", "total": "hit"}
    client = Client()
    run = client.get_run(second.run_id)
    assert run.tags["triptych.pipeline.replayed_from"] == first.run_id
    assert run.status.value == "FINISHED" and run.params["make.n"] == "4"
    hit = client.get_run(second.steps["total"].run_id)
    assert hit.tags["triptych.step.cached_from"] == first.steps["total"].run_id
    assert second.output("total") == {"total": 6}

    # a change to what the graph or keys derive from: imported and computed again
    (tmp_path / "params.yaml").write_text("make:\n  n: 5\n")
    third = run_pipeline(str(path))
    assert imports(tmp_path) == 2 and caches(third) == {"make": "miss", "total": "miss"}
    sys.modules.pop("triptych_pipeline_pipe", None)
    fourth = run_pipeline(str(path), params={"make.n": 4})  # an override is part of the lock
    assert imports(tmp_path) == 3 and caches(fourth) == {"make": "hit", "total": "hit"}
    sys.modules.pop("triptych_pipeline_pipe", None)
    run_pipeline(str(path), params={"make.n": 4})
    assert imports(tmp_path) == 3  # now that combination is recorded: replayed


def test_a_replay_needs_every_output_still_stored(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTED)
    first = run_pipeline(path)
    Client().artifacts.delete(first.steps["total"].outputs[0]["digest"])
    forget()
    again = run_pipeline(str(path))
    assert imports(tmp_path) == 2 and caches(again) == {"make": "hit", "total": "miss"}


def test_a_dynamic_or_uncacheable_pipeline_is_always_imported(tmp_path: Path) -> None:
    dynamic = COUNTED.replace(
        "def counted():\n    total(make())",
        "def counted():\n    import os\n    for _ in range(int(os.environ.get('COPIES', '1'))):\n"
        "        total(make())",
    )
    path = write(tmp_path, dynamic)
    run_pipeline(path)
    forget()
    run_pipeline(str(path))
    assert imports(tmp_path) == 2
    (tmp_path / "imports.log").unlink()
    path = write(tmp_path, COUNTED.replace("@step\ndef make", "@step(cache=False)\ndef make"))
    forget()
    run_pipeline(path)
    forget()
    run_pipeline(str(path))
    assert imports(tmp_path) == 2
