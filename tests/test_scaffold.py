"""``triptych init``: a project that installs, passes its own tests and its CI gates at once;
bad names and occupied folders are refused with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from triptych.errors import AlreadyExists, InvalidInput
from triptych.scaffold import init as scaffold


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.update(extra)
    return env


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triptych", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


def _throwaway_venv(folder: Path) -> Path:
    """A venv that sees this venv's packages (triptych and its dependencies) without
    installing them: ``--system-site-packages`` alone would reach the base Python's."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
        check=True,
        timeout=120,
    )
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "_parent_venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def _can_build_wheels() -> bool:
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("wheel") is not None:
        return True
    try:  # bdist_wheel is part of setuptools from 70.1
        major, minor = (int(x) for x in md.version("setuptools").split(".")[:2])
    except (md.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


@pytest.mark.slow
def test_a_new_project_installs_and_passes_its_tests_and_ci_gates(tmp_path: Path) -> None:
    done = _cli("init", "churn-model", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    project = tmp_path / "churn-model"
    assert made["package"] == "churn_model" and made["git"] == "initialised"
    for path in (
        "src/churn_model/data.py",
        "src/churn_model/features.py",
        "src/churn_model/train.py",
        "src/churn_model/evaluate.py",
        "pipelines/training.py",
        "params.yaml",
        "tests/unit/test_train.py",
        "tests/data/test_data.py",
        ".github/workflows/pull-request.yml",
        ".github/workflows/training.yml",
        ".github/workflows/release.yml",
        ".gitlab-ci.yml",
        "Dockerfile",
        "Makefile",
        "README.md",
        "pyproject.toml",
    ):
        assert (project / path).is_file(), path

    python = _throwaway_venv(tmp_path / "venv")
    # Without isolation when this venv can build the editable wheel; else pip fetches the
    # build backend (setuptools) as any `pip install -e` of the project would.
    isolation = ["--no-build-isolation"] if _can_build_wheels() else []
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *isolation, "-e", "."],
        cwd=project,
        capture_output=True,
        text=True,
        env=_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "10 passed" in tests.stdout
    ci = subprocess.run(
        [str(python), "-m", "triptych", "ci", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert ci.returncode == 0, ci.stdout + ci.stderr
    report = json.loads(ci.stdout)
    status = {g["name"]: g["status"] for g in report["gates"]}
    assert status == dict.fromkeys(("lint", "unit", "data", "train", "gate"), "passed"), report
    details = {g["name"]: g["detail"] for g in report["gates"]}
    assert "6 passed" in details["unit"] and "4 passed" in details["data"]
    assert details["gate"].startswith("churn_model: first model")
    assert (project / ".triptych" / "triptych.db").is_file()  # the project's own store

    # The release workflow's production step, as CI runs it, against that store.
    release = yaml.safe_load((project / ".github" / "workflows" / "release.yml").read_text())
    (canary,) = [s for s in release["jobs"]["production"]["steps"] if "canary" in s.get("name", "")]
    env = _env(MODEL=release["env"]["MODEL"], PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    for _ in range(2):  # the first release creates the deployment, the next one reuses it
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", canary["run"]],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "canary models:/churn_model@champion takes 10%" in done.stdout
    shown = _cli("deploy", "show", "churn_model", "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["primary"] == "models:/churn_model@production"


@pytest.mark.parametrize("package", ["demo", "a_rather_long_package_name_for_a_model"])
def test_the_templates_are_lint_clean_and_ci_calls_the_same_gates(
    tmp_path: Path, package: str
) -> None:
    files = scaffold.render(package, package)
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([*ruff, *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    workflows = [f for f in files if f.startswith(".github/workflows/")] + [".gitlab-ci.yml"]
    commands = ""
    for name in workflows:
        assert isinstance(yaml.safe_load(files[name]), dict), name
        commands += files[name]
    for gate in ("lint", "unit", "data", "train,gate"):
        assert f"triptych ci --only {gate}" in commands
    release = files[".github/workflows/release.yml"]
    assert "environment: production" in release and "triptych smoke-test" in release
    assert f"triptych deploy canary {package}" in release
    assert "when: manual" in files[".gitlab-ci.yml"]
    params = yaml.safe_load(files["params.yaml"])
    assert set(params) == {"training", "evaluation", "registration", "scoring"}
    assert "\t" + "triptych ci --only unit" in files["Makefile"]  # a real recipe line


def test_params_yaml_drives_the_pipeline(tmp_path: Path) -> None:
    made = scaffold.init(tmp_path / "drive-demo")
    root = Path(made.path)
    mask = os.umask(0)
    os.umask(mask)
    assert root.stat().st_mode & 0o777 == 0o777 & ~mask  # not the temp folder's 0700
    assert os.readlink(root / "pipelines" / "params.yaml") == os.path.join("..", "params.yaml")
    sys.path.insert(0, str(root / "src"))
    try:
        from triptych.pipelines.pipeline import load

        plan = load(root / "pipelines" / "training.py").plan()
    finally:
        sys.path.remove(str(root / "src"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert plan.params["training"] == params["training"]
    assert plan.params["train"] == {"alpha": 0.5, "method": "ridge", "budget_s": 30}
    assert plan.params["split"] == {"test_size": 0.2, "seed": 0}
    assert plan.params["evaluation"] == {"metric": "mse", "threshold": 5000}
    assert plan.params["registration"] == {
        "model_name": "drive_demo",
        "alias": "champion",
        "min_delta": 0.0,
    }


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1model", "not a valid project name"),
        ("my model", "not a valid project name"),
        ("model-", "not a valid project name"),
        ("import", "would shadow"),
        ("triptych", "would shadow"),
        ("json", "would shadow"),
        ("tests", "would shadow"),
    ],
)
def test_a_bad_project_name_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        scaffold.init(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_one_line_for_a_bad_name(tmp_path: Path) -> None:
    done = _cli("init", "my project", cwd=tmp_path)
    assert done.returncode == 1
    assert "not a valid project name" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_folder_is_refused_unless_force_which_keeps_existing_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "existing"
    target.mkdir()
    (target / "README.md").write_text("mine\n")
    with pytest.raises(AlreadyExists, match="not empty"):
        scaffold.init(target)
    assert [p.name for p in target.iterdir()] == ["README.md"]
    made = scaffold.init(target, force=True, git=False)
    assert (target / "README.md").read_text() == "mine\n"  # never overwritten
    assert made.skipped == ["README.md"] and "README.md" not in made.files
    assert (target / "pipelines" / "training.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]  # no temp folder left


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    made = scaffold.init(tmp_path / "empty", git=False)
    assert made.skipped == [] and (tmp_path / "empty" / "Makefile").is_file()


def test_an_error_while_writing_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(tmp: Path, target: Path) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(scaffold, "_git_init", broken)
    with pytest.raises(OSError, match="disk full"):
        scaffold.init(tmp_path / "half")
    assert list(tmp_path.iterdir()) == []
