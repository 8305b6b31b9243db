"""``triptych doctor``: how far a project has climbed, from what it can show.

Two readings, both evidence-based (every point names the file, run, model or deployment it
found, or what it looked for and did not find):

* the **maturity level** on the usual 0-4 scale — 0 no MLOps, 1 DevOps (code under version
  control, tested, with CI), 2 automated training (a tracked training pipeline feeding a
  registry), 3 automated deployment (gated models deployed by a release pipeline), 4 automated
  operations (monitored in production, retrained and rolled back by the loop). A level counts
  only when the ones below it do: that is what "climbing" means;
* the **ML Test Score** (Breck et al., "The ML Test Score: A Rubric for ML Production
  Readiness", 2017): per section (data, model, infrastructure, monitoring) a point per test
  that is automated, half a point where only a manual trace exists; the overall score is the
  lowest section's, as the paper defines it.

Nothing is written: a project without a store is read as one, not given an empty store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput

if TYPE_CHECKING:
    from triptych.tracking.client import Client

LEVELS = (
    "no MLOps",
    "DevOps",
    "automated training",
    "automated deployment",
    "automated operations",
)
SECTIONS = ("data", "model", "infrastructure", "monitoring")
MAX_RUNS = 5000  # the newest runs read; enough to see what a project does
MAX_FILES = 5000
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".triptych",
    ".tox",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
}


@dataclass
class Point:
    """One piece of evidence: a requirement of a level, or a test of the ML Test Score."""

    key: str
    title: str
    score: float  # 1 automated / met, 0.5 manual trace, 0 absent
    evidence: str
    fix: str = ""
    section: str | None = None  # for ML Test Score tests

    @property
    def met(self) -> bool:
        return self.score >= 1


@dataclass
class Diagnosis:
    path: str
    store: str | None
    level: int
    levels: list[dict[str, Any]]
    tests: list[Point]
    sections: dict[str, float]
    next_steps: list[str] = field(default_factory=list)

    @property
    def level_name(self) -> str:
        return LEVELS[self.level]

    @property
    def ml_test_score(self) -> float:
        return min(self.sections.values()) if self.sections else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "store": self.store,
            "level": self.level,
            "level_name": self.level_name,
            "levels": self.levels,
            "ml_test_score": {
                "score": self.ml_test_score,
                "sections": self.sections,
                "tests": [asdict(t) for t in self.tests],
            },
            "next_steps": self.next_steps,
        }


# -- what the folder shows ------------------------------------------------------------------------
@dataclass
class Files:
    root: Path
    git: bool
    ci: dict[str, str]  # path -> text of CI configuration files
    tests: list[str]
    pipelines: list[str]  # files defining a @pipeline
    params: bool
    dockerfile: bool

    @property
    def ci_text(self) -> str:
        return "\n".join(self.ci.values())


def _walk(root: Path) -> Iterator[Path]:
    count = 0
    stack = [root]
    while stack and count < MAX_FILES:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in _SKIP_DIRS:
                    stack.append(entry)
            elif entry.is_file():
                count += 1
                yield entry


def read_files(root: Path) -> Files:
    ci: dict[str, str] = {}
    tests: list[str] = []
    pipelines: list[str] = []
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        if (rel.startswith(".github/workflows/") and path.suffix in (".yml", ".yaml")) or (
            rel == ".gitlab-ci.yml"
        ):
            ci[rel] = path.read_text(encoding="utf-8", errors="replace")
        elif path.suffix == ".py":
            if re.match(r"(test_.*|.*_test)\.py$", path.name):
                tests.append(rel)
            elif path.stat().st_size < 1_000_000:
                text = path.read_text(encoding="utf-8", errors="replace")
                if re.search(r"^@pipeline\b", text, re.MULTILINE):
                    pipelines.append(rel)
    git = any((folder / ".git").exists() for folder in (root, *root.parents))
    return Files(
        root,
        git,
        ci,
        sorted(tests),
        sorted(pipelines),
        (root / "params.yaml").is_file(),
        (root / "Dockerfile").is_file(),
    )


# -- what the store shows -------------------------------------------------------------------------
@dataclass
class Store:
    url: str | None
    runs: list[Any] = field(default_factory=list)
    datasets: list[Any] = field(default_factory=list)
    schemas: int = 0
    models: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # every model's audit trail
    deployments: list[Any] = field(default_factory=list)
    deploy_events: list[Any] = field(default_factory=list)
    monitors: list[Any] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)

    def runs_tagged(self, tag: str, value: str | None = None) -> list[Any]:
        return [r for r in self.runs if tag in r.tags and (value is None or r.tags[tag] == value)]


def _store_exists(client_settings: Any) -> bool:
    url = str(client_settings.tracking_uri)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).is_file()
    return True  # a server database: opening it writes nothing that is not there


def read_store(root: Path) -> tuple[Store, Client | None]:
    from triptych import config
    from triptych.tracking.client import Client
    from triptych.uris import redact

    settings = config.resolve(cwd=root)
    if not _store_exists(settings):
        return Store(None), None
    client = Client(settings.tracking_uri, settings.artifact_uri)
    s = client.store
    store = Store(redact(str(settings.tracking_uri)))
    experiments = [e.experiment_id for e in s.list_experiments()]
    token = None
    while experiments and len(store.runs) < MAX_RUNS:
        page = s.search_runs(experiments, max_results=1000, page_token=token)
        store.runs.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    store.datasets = s.list_datasets()
    store.schemas = sum(1 for d in store.datasets if d.schema)
    store.models = s.list_registered_models()
    for m in store.models:
        store.events.extend(s.model_history(m.name))
    store.deployments = s.list_deployments()
    for d in store.deployments:
        store.deploy_events.extend(s.deployment_history(d.name))
    store.monitors = s.list_monitors()
    store.alerts = s.list_alerts(limit=1000)
    store.schedules = s.list_schedules()
    return store, client


# -- the readings ---------------------------------------------------------------------------------
def _point(
    key: str,
    title: str,
    found: list[str] | str | None,
    fix: str,
    *,
    partial: list[str] | str | None = None,
    section: str | None = None,
) -> Point:
    def text(v: list[str] | str) -> str:
        if isinstance(v, str):
            return v
        return ", ".join(v[:4]) + (f" (+{len(v) - 4} more)" if len(v) > 4 else "")

    if found:
        return Point(key, title, 1.0, text(found), section=section)
    if partial:
        return Point(key, title, 0.5, text(partial), fix, section=section)
    return Point(key, title, 0.0, "not found", fix, section=section)


def _events(store: Store, action: str) -> list[Any]:
    return [e for e in store.events if e.action == action]


def _levels(files: Files, store: Store) -> list[list[Point]]:
    runs_with_code = [r for r in store.runs if r.fingerprint and r.fingerprint.code.commit]
    pipeline_runs = [
        r for r in store.runs_tagged("triptych.pipeline.name") if r.parent_run_id is None
    ]
    gates = _events(store, "gate")
    release = [p for p, text in files.ci.items() if re.search(r"smoke-test|deploy", text)]
    trained_in_ci = [
        p for p, text in files.ci.items() if re.search(r"pipeline run|triptych ci", text)
    ]
    policies = [m.name for m in store.monitors if m.policy is not None]
    loop = [e for e in store.events if e.action.startswith("loop.")]
    checks = store.runs_tagged("triptych.monitoring.checks")
    return [
        [],
        [
            _point(
                "vcs",
                "code under version control",
                "git" if files.git else None,
                "git init, and commit the project",
            ),
            _point("tests", "automated tests", files.tests, "add tests/ with pytest tests"),
            _point(
                "ci",
                "a CI configuration",
                list(files.ci),
                "add .github/workflows/ (triptych init writes one)",
            ),
        ],
        [
            _point(
                "pipeline",
                "a training pipeline",
                files.pipelines,
                "write the training as a @pipeline (see examples/diabetes/pipeline.py)",
            ),
            _point(
                "pipeline_runs",
                "the pipeline has run, tracked",
                [f"{len(pipeline_runs)} pipeline run(s)"] if pipeline_runs else None,
                "triptych pipeline run pipelines/training.py",
            ),
            _point(
                "registry",
                "models in the registry",
                [f"{m.name} ({m.versions} version(s))" for m in store.models],
                "register the pipeline's model (the gate does: triptych.registry.gate)",
            ),
            _point(
                "fingerprint",
                "runs record code, data and environment",
                f"{len(runs_with_code)} run(s) with a commit" if runs_with_code else None,
                "run from a git checkout, and log_input the data",
                partial=f"{len(store.runs)} run(s) without a commit" if store.runs else None,
            ),
        ],
        [
            _point(
                "gate",
                "models are gated against the champion",
                f"{len(gates)} gate decision(s)" if gates else None,
                "register through triptych.registry.gate (the pipeline's register step)",
            ),
            _point(
                "deployment",
                "a deployment serves a registered model",
                [f"{d.name} → {d.primary}" for d in store.deployments],
                "triptych deploy create NAME --model models:/NAME@champion",
            ),
            _point(
                "release",
                "a release pipeline deploys and smoke-tests",
                release,
                "a CI job that runs triptych deploy and triptych smoke-test",
                partial=trained_in_ci,
            ),
        ],
        [
            _point(
                "monitor",
                "production is monitored",
                [f"{m.name} ({len(checks)} check run(s))" for m in store.monitors],
                "triptych monitor create DEPLOYMENT",
            ),
            _point(
                "loop",
                "drift or decay retrains, gates, promotes and rolls back by itself",
                [f"policy on {', '.join(policies)}"] if policies else None,
                "triptych monitor policy DEPLOYMENT --pipeline pipelines/training.py",
                partial=[f"{len(store.schedules)} schedule(s)"] if store.schedules else None,
            ),
            _point(
                "loop_acted",
                "the loop has acted",
                [f"{len(loop)} loop action(s)"] if loop else None,
                "triptych monitor loop DEPLOYMENT (or a cron job running --once)",
            ),
        ],
    ]


def _tests(files: Files, store: Store) -> list[Point]:
    s = store
    inputs = [r for r in s.runs if any((i.source or "").startswith("datasets:/") for i in r.inputs)]
    validate = s.runs_tagged("triptych.step.name", "validate")
    automl = s.runs_tagged("triptych.automl")
    tuned = {r.params.get("alpha") for r in s.runs if "alpha" in r.params}
    gates = _events(s, "gate")
    holdout = [r for r in s.runs if any(i.name.endswith("test") for i in r.inputs)]
    envs = [r for r in s.runs if r.fingerprint and r.fingerprint.env_digest]
    locks = s.runs_tagged("triptych.pipeline.lock")
    rollbacks = [e for e in s.deploy_events if e.action == "rollback"]
    rollbacks += [e for e in s.events if e.action == "loop.rollback"]
    staged = [e for e in s.deploy_events if e.action in ("canary", "shadow")]
    staged += [d for d in s.deployments if d.canary or d.shadow]
    labels = s.runs_tagged("triptych.monitoring.labels")
    checks = s.runs_tagged("triptych.monitoring.checks")
    serving = s.runs_tagged("triptych.serving.target")
    hooks = [m.name for m in s.monitors if m.webhooks]
    alert_schedules = [sc.name for sc in s.schedules if sc.kind == "alert"]
    ci = files.ci_text
    point = _point
    return [
        point(
            "schema",
            "feature expectations are captured in a schema",
            f"{s.schemas} dataset schema(s)" if s.schemas else None,
            "triptych data add NAME FILE (infers and keeps a schema)",
            section="data",
        ),
        point(
            "data_tests",
            "data is tested before training",
            f"{len(validate)} validate step run(s)" if validate else None,
            "a validate step calling triptych.data.check",
            section="data",
            partial=[d.name for d in s.datasets],
        ),
        point(
            "data_versions",
            "training data is versioned and linked to runs",
            f"{len(inputs)} run(s) with a datasets:/ input" if inputs else None,
            "triptych.log_input('datasets:/NAME@VERSION') in training",
            section="data",
        ),
        point(
            "data_in_ci",
            "data tests run in CI",
            "triptych ci / data tests in CI" if re.search(r"triptych ci|data", ci) else None,
            "run `triptych ci --only data` in the pull-request workflow",
            section="data",
        ),
        point(
            "model_code",
            "model code is reviewed and versioned",
            "git" if files.git and files.ci else None,
            "git + a pull-request workflow",
            partial="git" if files.git else None,
            section="model",
        ),
        point(
            "offline_metrics",
            "offline metrics are tracked for every model",
            f"{len([r for r in s.runs if r.metrics])} run(s) with metrics"
            if any(r.metrics for r in s.runs)
            else None,
            "log the evaluation metric: triptych.log_metric('mse', …)",
            section="model",
        ),
        point(
            "tuning",
            "hyperparameters are searched",
            f"{len(automl)} AutoML run(s)" if automl else None,
            "triptych automl, or train.method: automl",
            partial=f"{len(tuned)} alpha value(s) tried" if len(tuned) > 1 else None,
            section="model",
        ),
        point(
            "baseline",
            "a new model is compared with the champion before it serves",
            f"{len(gates)} gate decision(s)" if gates else None,
            "triptych.registry.gate in the register step",
            section="model",
        ),
        point(
            "holdout",
            "model quality is measured on held-out data",
            f"{len(holdout)} run(s) logged their test split" if holdout else None,
            "log_input(test, name='test') where the model is evaluated",
            section="model",
        ),
        point(
            "unit_tests",
            "the ML code has unit tests",
            files.tests,
            "tests/ for the data, features and training functions",
            section="infrastructure",
        ),
        point(
            "reproducible",
            "training is reproducible (code, data and environment recorded)",
            f"{len(locks)} pipeline run(s) with a replay lock" if locks else None,
            "run training as a triptych pipeline",
            section="infrastructure",
            partial=f"{len(envs)} run(s) with an environment" if envs else None,
        ),
        point(
            "pipeline_ci",
            "the training pipeline is integration-tested in CI",
            "CI runs the pipeline" if re.search(r"pipeline run|triptych ci", ci) else None,
            "run `triptych ci` (train + gate) on main",
            section="infrastructure",
        ),
        point(
            "staged",
            "new models go out as canary or shadow first",
            f"{len(staged)} canary/shadow stage(s)" if staged else None,
            "triptych deploy canary NAME models:/NAME@challenger --weight 10",
            section="infrastructure",
        ),
        point(
            "rollback",
            "a model can be rolled back",
            f"{len(rollbacks)} rollback(s)" if rollbacks else None,
            "triptych deploy rollback NAME (the loop rolls back by itself)",
            partial=[d.name for d in s.deployments],
            section="infrastructure",
        ),
        point(
            "serving_log",
            "what is served is logged and traceable",
            f"{len(serving)} serving run(s) with a prediction log" if serving else None,
            "triptych serve (logs every prediction)",
            section="monitoring",
        ),
        point(
            "input_drift",
            "serving inputs are checked against the training data",
            f"{len(checks)} deployment(s) checked" if checks else None,
            "triptych monitor check DEPLOYMENT",
            section="monitoring",
            partial=[m.name for m in s.monitors],
        ),
        point(
            "live_quality",
            "live prediction quality is measured from labels",
            f"{len(labels)} deployment(s) with labels" if labels else None,
            "triptych monitor labels DEPLOYMENT labels.csv",
            section="monitoring",
        ),
        point(
            "alerts",
            "breaches alert someone",
            (hooks + alert_schedules) or None,
            "triptych monitor create … --webhook URL",
            section="monitoring",
            partial=f"{len(s.alerts)} alert(s) recorded" if s.alerts else None,
        ),
        point(
            "staleness",
            "a stale model is retrained automatically",
            [m.name for m in s.monitors if m.policy is not None],
            "triptych monitor policy DEPLOYMENT --pipeline …",
            section="monitoring",
            partial=[sc.name for sc in s.schedules],
        ),
    ]


def diagnose(path: str | Path = ".") -> Diagnosis:
    """Read the project at ``path`` and its store. Raises InvalidInput when ``path`` is not a
    folder; writes nothing."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder", hint="run triptych doctor in a project")
    root = root.resolve()
    files = read_files(root)
    store, _ = read_store(root)
    levels = _levels(files, store)
    level = 0
    for n in range(1, len(levels)):
        if all(p.met for p in levels[n]):
            level = n
        else:
            break
    tests = _tests(files, store)
    sections = {s: sum(t.score for t in tests if t.section == s) for s in SECTIONS}
    steps: list[str] = []
    if level + 1 < len(levels):
        steps = [f"{p.title}: {p.fix}" for p in levels[level + 1] if not p.met]
    weakest = min(SECTIONS, key=lambda s: sections[s])
    steps += [
        f"{t.title} ({weakest}): {t.fix}" for t in tests if t.section == weakest and t.score < 1
    ][:3]
    return Diagnosis(
        str(root),
        store.url,
        level,
        [
            {
                "level": n,
                "name": LEVELS[n],
                "met": n <= level or all(p.met for p in levels[n]),
                "requirements": [asdict(p) for p in levels[n]],
            }
            for n in range(len(levels))
        ],
        tests,
        sections,
        steps,
    )


__all__ = ["LEVELS", "SECTIONS", "Diagnosis", "Point", "diagnose"]
