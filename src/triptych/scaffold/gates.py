"""``triptych ci``: the gates a CI job runs, run here, in order: lint, unit, data, train, gate.

The generated workflows call ``triptych ci --only <gate>``, so a laptop and CI run the same
commands. Lint and the tests run as subprocesses of this interpreter (argument lists, never a
shell); train runs the project's pipeline in this process through
:func:`triptych.pipelines.runner.run`; gate reads the decision the pipeline's registration
step recorded (``triptych.registry.gate`` tags the run it judged).

Where things are comes from ``[tool.triptych.ci]`` in the project's ``pyproject.toml``
(``pipeline``, ``unit``, ``data``), else the layout ``triptych init`` writes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput, NotFound, TriptychError

GATES = ("lint", "unit", "data", "train", "gate")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_TAIL = 40  # lines of a failing command's output kept in the report
_GATE_TAG = "triptych.gate."


@dataclass
class GateResult:
    """One gate: its status, how long it took, what it found and what it ran."""

    name: str
    status: str = SKIPPED
    duration: float = 0.0
    detail: str = ""
    commands: list[list[str]] = field(default_factory=list)
    output: str = ""  # the tail of a failing command's output

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration"] = round(self.duration, 3)
        return d


@dataclass
class Report:
    """Every gate that ran, in order; ``passed`` when none failed."""

    path: str
    gates: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(g.status != FAILED for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "passed": self.passed,
            "gates": [g.to_dict() for g in self.gates],
        }


@dataclass
class Config:
    """Where the project keeps what the gates run."""

    root: Path
    pipeline: Path
    unit: Path | None
    data: Path | None
    params: Path | None

    @classmethod
    def read(cls, root: Path) -> Config:
        settings: dict[str, Any] = {}
        pyproject = root / "pyproject.toml"
        if pyproject.is_file():
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as e:
                raise InvalidInput(f"{pyproject} is not valid TOML: {e}") from None
            settings = data.get("tool", {}).get("triptych", {}).get("ci", {})
        tests = root / "tests"
        data_dir = root / str(settings.get("data", "tests/data"))
        unit_dir = root / str(settings.get("unit", "tests/unit"))
        if "unit" not in settings and not unit_dir.is_dir():
            unit_dir = tests
        params = root / "params.yaml"
        return cls(
            root=root,
            pipeline=root / str(settings.get("pipeline", "pipelines/training.py")),
            unit=unit_dir if unit_dir.is_dir() else None,
            data=data_dir if data_dir.is_dir() else None,
            params=params if params.is_file() else None,
        )


def parse_only(values: Iterable[str] | None) -> list[str]:
    """``["lint,unit", "gate"]`` → the gates in their run order; InvalidInput for a typo."""
    wanted = {v.strip() for value in values or () for v in value.split(",") if v.strip()}
    unknown = sorted(wanted - set(GATES))
    if unknown:
        raise InvalidInput(
            f"there is no gate {unknown[0]!r}", hint=f"gates: {', '.join(GATES)} (in this order)"
        )
    return [g for g in GATES if g in wanted] if wanted else list(GATES)


def run(
    path: str | Path = ".",
    *,
    only: Iterable[str] | None = None,
    keep_going: bool = False,
    on_gate: Callable[[GateResult], None] | None = None,
) -> Report:
    """Run the gates (all, or ``only`` those) in order; stop at the first failure unless
    ``keep_going``. Gates not reached are reported as skipped."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise NotFound(f"no project folder at {root}", hint="give the project's folder")
    config = Config.read(root)
    selected = parse_only(only)
    runner = _Runner(config)
    results: list[GateResult] = []
    stopped = False
    for name in selected:
        if stopped:
            result = GateResult(name, SKIPPED, detail="not run: an earlier gate failed")
        else:
            start = time.perf_counter()
            result = getattr(runner, name)()
            result.duration = time.perf_counter() - start
            stopped = result.status == FAILED and not keep_going
        results.append(result)
        if on_gate is not None:
            on_gate(result)
    return Report(str(root), results)


class _Runner:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.pipeline_run: str | None = None  # the run the train gate made, for the gate gate

    # -- subprocess gates -------------------------------------------------------------

    def _command(self, name: str, commands: list[list[str]], ok_detail: str) -> GateResult:
        result = GateResult(name, PASSED, detail=ok_detail, commands=commands)
        for command in commands:
            done = subprocess.run(
                command,
                cwd=self.config.root,
                capture_output=True,
                text=True,
                check=False,
                env=_child_env(self.config.root),
            )
            text = (done.stdout + done.stderr).strip()
            if done.returncode == 5 and "pytest" in command:  # pytest: no tests collected
                return GateResult(name, SKIPPED, detail="no tests collected", commands=commands)
            if done.returncode != 0:
                last = _summary_line(text)
                result.status = FAILED
                result.detail = f"{' '.join(command[2:] or command)} exited {done.returncode}"
                result.detail += f": {last}" if last else ""
                result.output = "\n".join(text.splitlines()[-_TAIL:])
                return result
            if "pytest" in command:
                result.detail = _last_line(text) or ok_detail
        return result

    def lint(self) -> GateResult:
        ruff = ruff_command()
        if ruff is None:
            return GateResult("lint", SKIPPED, detail="ruff is not installed: pip install ruff")
        return self._command(
            "lint", [[*ruff, "check", "."], [*ruff, "format", "--check", "."]], "ruff clean"
        )

    def _pytest(self, name: str, folder: Path | None, ignore: Path | None = None) -> GateResult:
        if folder is None:
            where = "tests/data" if name == "data" else "tests"
            return GateResult(name, SKIPPED, detail=f"no {where} folder")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
        if ignore is not None and ignore.is_relative_to(folder):
            command.append(f"--ignore={ignore}")
        return self._command(name, [command], "passed")

    def unit(self) -> GateResult:
        return self._pytest("unit", self.config.unit, ignore=self.config.data)

    def data(self) -> GateResult:
        return self._pytest("data", self.config.data)

    # -- in-process gates -------------------------------------------------------------

    def train(self) -> GateResult:
        from triptych.pipelines import runner

        pipeline = self.config.pipeline
        if not pipeline.is_file():
            return GateResult(
                "train",
                FAILED,
                detail=f"no pipeline at {_rel(pipeline, self.config.root)}",
                output="set [tool.triptych.ci] pipeline = 'pipelines/….py' in pyproject.toml",
            )
        try:
            with _in_project(self.config.root):
                result = runner.run(pipeline, params_file=self.config.params)
        except TriptychError as e:
            failed = getattr(e, "result", None)
            if failed is not None:
                self.pipeline_run = failed.run_id
            return GateResult("train", FAILED, detail=e.message, output=e.hint or "")
        except Exception as e:  # the project's own code failed to import or plan
            return GateResult("train", FAILED, detail=f"{type(e).__name__}: {e}"[:300])
        self.pipeline_run = result.run_id
        reused = sum(1 for s in result.steps.values() if s.cache in ("hit", "resumed"))
        return GateResult(
            "train",
            PASSED,
            detail=f"{result.name} run {result.run_id[:12]}: {len(result.steps)} steps, "
            f"{reused} reused",
        )

    def gate(self) -> GateResult:
        try:
            with _in_project(self.config.root):
                return self._read_gate()
        except TriptychError as e:
            return GateResult("gate", FAILED, detail=e.message, output=e.hint or "")
        except Exception as e:  # the pipeline file no longer imports
            return GateResult("gate", FAILED, detail=f"{type(e).__name__}: {e}"[:300])

    def _read_gate(self) -> GateResult:
        from triptych.pipelines.runner import TAG_FROM, TAG_PARENT
        from triptych.tracking import fluent

        client = fluent._client()
        run_id = self.pipeline_run or self._latest_pipeline_run(client)
        if run_id is None:
            return GateResult(
                "gate",
                FAILED,
                detail="the training pipeline has not run in this store",
                output="run: triptych ci --only train,gate",
            )
        pipeline_run = client.get_run(run_id)
        if pipeline_run.status.value != "FINISHED":
            return GateResult(
                "gate",
                FAILED,
                detail=f"the training run {run_id[:12]} is {pipeline_run.status.value}",
            )
        steps = client.search_runs(
            filter_string=f"tags.`{TAG_PARENT}` = '{run_id}'", max_results=1000
        ).items
        for step_run in steps:
            judged = step_run
            for _ in range(10):  # a reused step: the decision is on the run it reused
                source = judged.tags.get(TAG_FROM)
                if not source or any(k.startswith(_GATE_TAG) for k in judged.tags):
                    break
                judged = client.get_run(source)
            for key, value in sorted(judged.tags.items()):
                if not key.startswith(_GATE_TAG) or key.endswith(".reason"):
                    continue
                model = key[len(_GATE_TAG) :]
                reason = judged.tags.get(f"{key}.reason", value)
                status = PASSED if value == "passed" else FAILED
                return GateResult("gate", status, detail=f"{model}: {reason}")
        return GateResult(
            "gate",
            FAILED,
            detail=f"the training run {run_id[:12]} recorded no gate decision",
            output="register models with triptych.registry.gate(...) in a step",
        )

    def _latest_pipeline_run(self, client: Any) -> str | None:
        from triptych.pipelines.pipeline import load
        from triptych.pipelines.runner import TAG_PIPELINE

        if not self.config.pipeline.is_file():
            return None
        name = load(self.config.pipeline).name
        page = client.search_runs(
            filter_string=f"tags.`{TAG_PIPELINE}` = '{name}'",
            order_by=["start_time DESC"],
            max_results=1,
        )
        return page.items[0].run_id if page.items else None


class _in_project:
    """Run with the project folder as the working directory (its store and triptych.toml are
    resolved from there on first use) and its ``src/`` importable, restoring both after."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = ""
        self.added: str | None = None

    def __enter__(self) -> None:
        self.cwd = os.getcwd()
        os.chdir(self.root)
        src = str(self.root / "src")
        if (self.root / "src").is_dir() and src not in sys.path:
            sys.path.insert(0, src)
            self.added = src

    def __exit__(self, *exc: object) -> None:
        from triptych.tracking import fluent

        fluent.flush()
        os.chdir(self.cwd)
        if self.added is not None and self.added in sys.path:
            sys.path.remove(self.added)


def ruff_command() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def _child_env(root: Path) -> dict[str, str]:
    """This environment, with the project's ``src/`` importable (as the train gate has it),
    so the tests see the same code whether or not the project is installed."""
    env = dict(os.environ)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if (root / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root / "src"), env.get("PYTHONPATH", "")) if p
        )
    return env


def _summary_line(text: str) -> str:
    """ruff's "Found 3 errors." or "1 file would be reformatted", else the last line."""
    for line in reversed(text.splitlines()):
        if re.match(r"^(Found \d+ error|\d+ files? would be reformatted)", line.strip()):
            return line.strip()
    return _last_line(text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


__all__ = ["GATES", "Config", "GateResult", "Report", "parse_only", "ruff_command", "run"]
