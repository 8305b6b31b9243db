"""``triptych init --from-notebook``: magics and shell escapes dropped, the parameters cell in
params.yaml, markdown kept as comments, what could not be converted reported, and the result
runs as a script and as a pipeline that logs its runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import triptych
from triptych.errors import InvalidInput
from triptych.pipelines import runner
from triptych.scaffold import notebook

SAMPLE = Path(__file__).parent / "data" / "experiment.ipynb"


def _env(home: Path, src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env["TRIPTYCH_HOME"] = str(home)
    env["PYTHONPATH"] = str(src)
    return env


def _write(path: Path, *cells: object) -> Path:
    nbformat.write(new_notebook(cells=list(cells)), str(path))
    return path


def test_the_sample_converts_without_magics_and_with_its_parameters() -> None:
    c = notebook.convert(SAMPLE)
    script = c.script()
    code_lines = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in code_lines if line.startswith(("%", "!"))]
    assert "echo 'not python'" not in script  # the %%bash cell
    assert "    # Ten numeric features, already scaled." in script  # markdown as comments
    assert "print(frame.head())" in script  # display() → print()
    assert "predicted = model.predict(" in script  # `%time stmt` keeps the statement
    assert c.params == {"alpha": 0.5, "test_size": 0.2, "seed": 0}
    assert yaml.safe_load(c.params_yaml()) == {"experiment": c.params}
    steps = {s.name: s for s in c.sections}
    assert list(steps) == ["load_the_data", "split", "train_step", "evaluate"]  # not `train`
    assert steps["split"].inputs == ["frame"] and steps["split"].outputs == ["train", "test"]
    assert sorted(steps["split"].params) == ["seed", "test_size"]
    assert sorted(steps["evaluate"].inputs) == ["model", "test"]
    problems = "\n".join(c.problems)
    assert "cell 10: a %%bash cell is not Python" in problems
    assert "display()" in problems
    assert "redefines `test`" in problems
    assert any("!pip install" in d for d in c.dropped)
    assert any("%matplotlib inline" in d for d in c.dropped)


@pytest.mark.slow
def test_the_converted_project_runs_as_a_pipeline_and_as_a_script(tmp_path: Path) -> None:
    made = notebook.init_from_notebook(SAMPLE, tmp_path / "nb-project", git=False)
    root = Path(made.path)
    assert made.package == "nb_project"
    for path in (
        "src/nb_project/experiment.py",
        "pipelines/experiment.py",
        "params.yaml",
        "CONVERSION.md",
        "notebooks/experiment.ipynb",
        ".github/workflows/pull-request.yml",
        "tests/unit/test_experiment.py",
    ):
        assert (root / path).exists(), path
    assert not (root / "src/nb_project/train.py").exists()  # the example's code is not there
    assert "a %%bash cell is not Python" in (root / "CONVERSION.md").read_text()
    assert made.notes == notebook.convert(SAMPLE).problems

    sys.path.insert(0, str(root / "src"))
    try:
        result = runner.run(root / "pipelines" / "experiment.py", params={"experiment.alpha": 2.0})
    finally:
        sys.path.remove(str(root / "src"))
    assert result.status == "FINISHED"
    assert [s.status for s in result.steps.values()] == ["finished"] * 4
    client = triptych.Client()
    runs = client.search_runs().items
    assert len(runs) == 5  # the pipeline run and one per step
    step_run = client.get_run(result.steps["train_step"].run_id)
    assert step_run.params["alpha"] == "2.0"

    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "nb_project.experiment"],
        cwd=root,
        env=_env(home, root / "src"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "mse=" in done.stdout
    script_runs = triptych.Client(
        f"sqlite:///{home / 'triptych.db'}", str(home / "artifacts")
    ).search_runs()
    (run,) = script_runs.items
    assert run.params == {"alpha": "0.5", "test_size": "0.2", "seed": "0"}


def test_a_notebook_without_headings_gets_a_step_per_code_cell(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "flat.ipynb",
        new_code_cell("import math\nn = 4"),
        new_code_cell("root = math.sqrt(n)"),
        new_code_cell("print(root)"),
    )
    c = notebook.convert(path)
    assert [s.name for s in c.sections] == ["cell_1", "cell_2", "cell_3"]
    assert c.sections[1].inputs == ["n"] and c.sections[2].inputs == ["root"]
    assert c.imports == ["import math"]


def test_an_unparseable_cell_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "broken.ipynb",
        new_markdown_cell("# Broken"),
        new_code_cell("x = 1"),
        new_code_cell("def f(:\n    return 1"),
    )
    with pytest.raises(InvalidInput, match="cell 3 does not parse as Python") as e:
        notebook.init_from_notebook(path, tmp_path / "out")
    assert e.value.hint and "def f(:" in e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb"]


def test_the_cli_reports_a_bad_notebook_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "not.ipynb").write_text("{ not json")
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "init", "--from-notebook", "not.ipynb", "proj"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "not a readable notebook" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not.ipynb"]


def test_the_cli_prints_what_it_could_not_convert(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "triptych", "init", "--from-notebook", str(SAMPLE), "nb-cli"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "could not convert" in done.stdout and "%%bash" in done.stdout
    assert (tmp_path / "nb-cli" / "CONVERSION.md").is_file()


def test_widgets_and_get_ipython_are_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "widgets.ipynb",
        new_code_cell("import ipywidgets as widgets\nslider = widgets.IntSlider()"),
        new_code_cell("get_ipython().run_line_magic('load_ext', 'autoreload')\ny = 2"),
    )
    problems = "\n".join(notebook.convert(path).problems)
    assert "`import ipywidgets as widgets` needs a notebook" in problems
    assert "`widgets` is used but no earlier cell defines it" in problems
    assert "needs IPython" in problems


def test_loops_augmented_assignments_and_helpers_are_read_as_python_reads_them(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "flow.ipynb",
        new_code_cell("import numpy as np\ntotal = 0\nfiles = !ls\nscale = 3"),
        new_code_cell(
            "%%capture\nfor i in range(3):\n    %time total += i\n    !echo hi\n"
            "def f(v):\n    return v * scale\nsquares = [k * k for k in range(4)]\nnp?"
        ),
        new_code_cell("total += 1\nresult = f(total) + sum(squares)\nresult"),
        new_code_cell("%%writefile notes.txt\nhello"),
    )
    c = notebook.convert(path)
    assert [(s.inputs, s.outputs) for s in c.sections] == [
        ([], ["total"]),
        (["total"], ["total", "squares"]),  # `total += i` in the loop reads and passes it on
        (["total", "squares"], []),
    ]
    problems = "\n".join(c.problems)
    assert "`i` is used" not in problems  # the loop binds it
    assert "`files = !ls` assigns the output of a shell escape" in problems
    assert "cell 4: a %%writefile cell is not Python" in problems
    assert "`f` reads the notebook variable `scale`" in problems
    script = c.script()
    assert "        total += i\n" in script and "pass  # dropped: !echo hi" in script
    assert "    print(result)\n" in script  # the cell's shown value
    compile(script, "flow.py", "exec")
