"""Code-execution gauntlet: crafted inputs execute nothing under default settings.

Every hostile input here would write a marker file if it were executed, and the test proves
that first (the naive way of loading it does write the marker). Then each triptych entry point
that reads such input is called with default settings: the marker never appears and the error
says why. Two standing checks over ``src/`` follow: no call goes through a shell, and every
temporary folder triptych creates is private (0700).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

import triptych
import triptych.data as datasets
from triptych import deployments
from triptych.cli.main import app as cli
from triptych.errors import InvalidInput, PermissionDenied, TriptychWarning
from triptych.models import registry
from triptych.monitoring import monitors, policy, report
from triptych.pipelines import params
from triptych.scaffold import notebook

SRC = Path(triptych.__file__).parent
X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0)[::-1]})
Y = X.a * 2 + 1


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """The file a hostile input writes when it runs; asserted absent after each refusal."""
    path = tmp_path / "MARKER"
    yield path


def _fail_if_ran(marker: Path) -> None:
    assert not marker.exists(), f"hostile input ran: {marker} was written"


# -- pickle ---------------------------------------------------------------------------------
class PickleBomb(Ridge):
    """Unpickling it calls ``open(marker, "w")``: the marker appears."""

    marker_: str

    def __reduce__(self) -> Any:
        return (open, (self.marker_, "w"))


def test_a_pickle_model_is_never_unpickled_by_default(marker: Path) -> None:
    bomb = PickleBomb().fit(X, Y)
    bomb.marker_ = str(marker)
    with triptych.start_run() as run:
        logged = triptych.log_model(bomb, "model", serializer="pickle")
    registry.register(logged.uri, "bomb")
    raw = triptych.Client().read_artifact(run.run_id, "model/model.pkl")
    pickle.loads(raw).close()  # the file is really hostile: the naive load writes the marker
    assert marker.exists()
    marker.unlink()

    for uri in (logged.uri, "models:/bomb/1"):
        with pytest.raises(PermissionDenied, match=r"pickle file.*runs any code"):
            triptych.load_model(uri)
        _fail_if_ran(marker)
    # the CLI paths that load models: batch scoring
    frame = tmp_path_of(marker) / "in.parquet"
    X.to_parquet(frame)
    out = tmp_path_of(marker) / "out.parquet"
    result = CliRunner().invoke(
        cli, ["predict", "models:/bomb/1", "--input", str(frame), "--output", str(out), "--json"]
    )
    assert isinstance(result.exception, PermissionDenied), (result.output, result.exception)
    assert "pickle file" in str(result.exception) and not out.exists()
    _fail_if_ran(marker)


def tmp_path_of(marker: Path) -> Path:
    return marker.parent


# -- skops with an untrusted type -----------------------------------------------------------
class SetstateBomb(Ridge):
    """skops rebuilds it through ``__setstate__``, which writes the marker."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker_"]).write_text("ran")
        super().__setstate__(state)


def test_a_skops_file_with_an_untrusted_type_is_refused_before_it_is_built(
    marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io as sio

    monkeypatch.delenv("TRIPTYCH_TRUSTED_TYPES", raising=False)
    bomb = SetstateBomb().fit(X, Y)
    bomb.marker_ = str(marker)
    with triptych.start_run(), pytest.warns(TriptychWarning):
        logged = triptych.log_model(bomb, "model")
    local = triptych.Client().download_artifacts(
        logged.uri.split("/")[1], "model/model.skops", marker.parent / "dl"
    )
    name = f"{SetstateBomb.__module__}.{SetstateBomb.__qualname__}"
    sio.load(local, trusted=[name, *sio.get_untrusted_types(file=local)])  # really hostile
    assert marker.exists()
    marker.unlink()

    with pytest.raises(PermissionDenied) as refused:
        triptych.load_model(logged.uri)
    assert name in str(refused.value) and "TRIPTYCH_TRUSTED_TYPES" in str(refused.value)
    _fail_if_ran(marker)


# -- YAML with python tags ------------------------------------------------------------------
def _yaml_bomb(marker: Path) -> str:
    return f'!!python/object/apply:builtins.open ["{marker}", "w"]'


def test_yaml_python_tags_are_never_constructed(marker: Path, tmp_path: Path) -> None:
    bomb = _yaml_bomb(marker)
    yaml.unsafe_load(bomb).close()  # the tag is really hostile: an unsafe load runs it
    assert marker.exists()
    marker.unlink()

    # params.yaml of a pipeline: refused as invalid YAML, naming the file
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pipe.py").write_text(
        "from triptych.pipelines import pipeline, step\n\n\n"
        "@step\ndef train(alpha: float = 1.0) -> float:\n    return alpha\n\n\n"
        "@pipeline\ndef pipe() -> None:\n    train()\n"
    )
    (project / "params.yaml").write_text(f"train:\n  alpha: {bomb}\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        params.read_file(project / "params.yaml")
    result = CliRunner().invoke(cli, ["pipeline", "run", str(project / "pipe.py")])
    assert isinstance(result.exception, InvalidInput), (result.output, result.exception)
    assert "not valid YAML" in str(result.exception)
    _fail_if_ran(marker)

    # -p overrides of a pipeline run and of a monitor's retraining policy: kept as text
    for parse in (params.parse_overrides, policy.parse_params):
        assert parse([f"train.alpha={bomb}"]) == {"train.alpha": bomb}
        _fail_if_ran(marker)

    # a dataset's schema YAML
    from triptych.data.schema import Schema

    with pytest.raises(InvalidInput):
        Schema.from_yaml(f"columns: {bomb}\n")
    _fail_if_ran(marker)


# -- notebooks ------------------------------------------------------------------------------
TEMPLATE_TEXT = "<< package >> {{ 7 * 191 }} <% if true %>x<% endif %>"


def _notebook(path: Path, marker: Path) -> Path:
    cells = [
        f"alpha = 0.5\nopen({str(marker)!r}, 'w').write('ran')",
        f"!touch {marker}",
        f"%system touch {marker}",
        f"%%bash\ntouch {marker}",
        f"import os\nos.system('touch {marker}')\nnote = {TEMPLATE_TEXT!r}",
        "__import__('subprocess').run(['touch', " + repr(str(marker)) + "])",
    ]
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "id": f"cell-{i}",
                "cell_type": "code",
                "metadata": {},
                "source": c,
                "outputs": [],
                "execution_count": 1,
            }
            for i, c in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(nb))
    return path


def test_a_notebook_is_converted_never_run(marker: Path, tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "hostile.ipynb", marker)
    made = notebook.init_from_notebook(nb, tmp_path / "hostile-project", git=False)
    _fail_if_ran(marker)
    code = "".join(
        (Path(made.path) / f).read_text() for f in made.files if f.endswith((".py", ".yaml"))
    )
    # the cells' text is copied, not rendered as the scaffold's templates
    assert TEMPLATE_TEXT in code and "1337" not in code
    # and the CLI does the same
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "cli-project"), "--from-notebook", str(nb), "--no-git"]
    )
    assert result.exit_code == 0, result.output
    _fail_if_ran(marker)


# -- templates: user text in the report -----------------------------------------------------
SSTI = "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}{{ 7 * 191 }}<%x%>"


def test_user_text_in_the_report_is_data_not_template(
    marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(marker.parent)  # the payload touches ./MARKER
    datasets.add("ref", X.assign(target=Y))
    with triptych.start_run(experiment="e") as run:
        triptych.log_input("datasets:/ref@1")
        triptych.log_model(Ridge().fit(X, Y), "model", input_example=X.head(2))
    registry.register(f"runs:/{run.run_id}/model", "m", description=SSTI)
    registry.set_alias("m", "champion", 1, reason=SSTI)
    deployments.create("m", "models:/m@champion")
    monitors.create("m", window="10m")
    data = report.gather("m")
    data["summary"]["deployment"] = SSTI  # user text wherever the page shows a name
    data["summary"]["reference"] = SSTI
    html = report.render(data)
    _fail_if_ran(marker)
    assert "1337" not in html
    assert "{{ cycler.__init__" in html or "{{ cycler.__init__".replace("'", "&#39;") in html


# -- no shell, anywhere in src/ -------------------------------------------------------------
def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


SHELL_FUNCTIONS = {
    "os.system",
    "os.popen",
    "os.spawnl",
    "os.spawnlp",
    "os.execl",
    "os.execlp",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
    "pty.spawn",
}
SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output"}


def test_no_call_in_src_goes_through_a_shell() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 100
    found: list[str] = []
    subprocess_calls = 0
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        for name, call in _calls(tree):
            where = f"{file.relative_to(SRC)}:{call.lineno}"
            if name in SHELL_FUNCTIONS or name in ("system", "popen"):
                found.append(f"{where} {name}")
            if name.split(".")[-1] in SUBPROCESS and "subprocess" in name:
                subprocess_calls += 1
                for kw in call.keywords:
                    if kw.arg == "shell" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        found.append(f"{where} {name}(shell=...)")
                first = call.args[0] if call.args else None
                if isinstance(first, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    found.append(f"{where} {name} with a command string")
            if name in ("eval", "exec") or name in ("yaml.load", "yaml.unsafe_load"):
                found.append(f"{where} {name}")
    assert subprocess_calls >= 10  # the walk does find the calls it checks
    assert found == []


def test_the_shell_check_sees_a_shell() -> None:
    """The checker itself: each forbidden form is caught."""
    bad = (
        "import os, subprocess\n"
        "os.system('ls')\n"
        "subprocess.run('ls', shell=True)\n"
        "subprocess.check_output(f'ls {x}')\n"
    )
    names = [name for name, _ in _calls(ast.parse(bad))]
    assert "os.system" in names
    calls = [c for n, c in _calls(ast.parse(bad)) if n == "subprocess.run"]
    assert any(kw.arg == "shell" for kw in calls[0].keywords)


# -- temporary folders are private ------------------------------------------------------------
_MADE: list[tuple[str, str, int | None]] = []
_WATCHING = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHING:
        return
    if event == "tempfile.mkdtemp":
        _MADE.append((event, str(args[0]), None))
    elif event == "os.mkdir" and not os.path.exists(args[0]):  # (exist_ok on one: a no-op)
        _MADE.append((event, os.fsdecode(args[0]), args[1]))


_HOOKED: list[bool] = []


@pytest.fixture
def watch_temp_dirs() -> Iterator[Callable[[], list[tuple[str, str, int | None]]]]:
    global _WATCHING
    if not _HOOKED:  # installed on first use; audit hooks cannot be removed: _WATCHING gates it
        sys.addaudithook(_audit)
        _HOOKED.append(True)
    _MADE.clear()
    _WATCHING = True
    try:
        yield lambda: list(_MADE)
    finally:
        _WATCHING = False
        _MADE.clear()


def test_temporary_folders_triptych_creates_are_private(
    tmp_path: Path,
    watch_temp_dirs: Callable[[], list[tuple[str, str, int | None]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every folder made directly in the system temp folder, or by mkdtemp anywhere, is 0700
    while triptych uses it: loading a model, adding data, downloading, scoring, scaffolding."""
    shared = tmp_path / "system-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))  # the "system" temp folder
    seen: dict[str, int] = {}

    def check() -> None:
        for event, path, mode in watch_temp_dirs():
            if event == "tempfile.mkdtemp":
                seen[path] = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else -1
                assert seen[path] in (0o700, -1), f"mkdtemp {path} is {oct(seen[path])}"
            elif Path(path).parent == shared:
                seen[path] = mode or 0
                assert mode is not None and mode & 0o077 == 0, f"{path} made with {mode:o}"

    datasets.add("d", X.assign(target=Y))
    with triptych.start_run() as run:
        logged = triptych.log_model(Ridge().fit(X, Y), "model", input_example=X.head(2))
    triptych.load_model(logged.uri)
    dl = triptych.Client().download_artifacts(run.run_id, "model")
    made = next(p for p in (dl, *dl.parents) if p.parent == shared)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700, "a download folder others can read"
    X.to_parquet(tmp_path / "in.parquet")
    from triptych.scoring.batch import score_file

    score_file(logged.uri, tmp_path / "in.parquet", tmp_path / "out.parquet")
    nb = _notebook(tmp_path / "n.ipynb", tmp_path / "never")
    notebook.init_from_notebook(nb, tmp_path / "proj", git=False)
    check()
    assert len(seen) >= 4, seen  # the watch saw the folders it checks

    # the watch itself: a folder others could read is caught
    _MADE.clear()
    os.mkdir(shared / "leaky", 0o755)
    with pytest.raises(AssertionError, match="made with 755"):
        check()
