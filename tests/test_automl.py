"""triptych.automl: the search, its tracking, the final model, resume, parallel trials, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import triptych
from triptych import automl
from triptych.automl import ensemble, space
from triptych.errors import InvalidInput, PermissionDenied
from triptych.store.entities import Run
from triptych.tracking.client import Client

STUDY_TAG = "tags.`triptych.automl.study`"
CHEAP = ["ridge", "bayesian_ridge", "lasso_lars_ic", "knn"]  # where the test is not the space


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


def _trial_runs(client: Client, study: str) -> list[Run]:
    """The trial runs of a study (the search runs carry the study tag too)."""
    runs = client.search_runs(None, f"{STUDY_TAG} = '{study}'", max_results=1000).items
    return [r for r in runs if "triptych.automl.trial" in r.tags]


# -- the search on real data --------------------------------------------------------------------
def test_regression_search_records_every_trial_and_logs_a_model_that_loads(
    diabetes: pd.DataFrame,
) -> None:
    x = diabetes.drop(columns="target")
    result = automl.fit(diabetes, "target", budget_s=60, n_trials=15, progress=False)

    predictions = result.predict(x.head(5))
    assert predictions.shape == (5,)
    board = result.leaderboard
    assert sorted(board["number"]) == list(range(15))
    baseline = board.set_index("number").loc[0]
    assert baseline["estimator"] == "ridge_cv"  # the strong simple baseline is trial 0
    assert baseline["preprocessing"] == "impute+scale"
    assert baseline["state"] == "complete" and baseline["folds"] == 5
    assert baseline["complexity"] == 0  # the one-SE rule's simplest model
    assert set(board["state"]) <= {"complete", "pruned", "failed"}
    assert {"number", "estimator", "preprocessing", "params", "cv_mean", "cv_std"} <= set(board)
    assert {"duration", "state", "complexity"} <= set(board)
    assert board["weight"].sum() == pytest.approx(1.0)
    assert result.kind in ("ensemble", "single")
    assert result.best["number"] in set(board["number"])
    assert np.isfinite(result.cv_score)

    client = Client()
    parent = client.get_run(result.run_id)
    assert parent.status.value == "FINISHED"
    assert parent.params["task"] == "regression" and parent.params["metric"] == "mse"
    assert parent.params["n_trials"] == "15" and parent.params["cv"] == "5"
    assert parent.metrics["cv_mse"] == pytest.approx(result.cv_score)
    assert parent.inputs and parent.inputs[0].rows == len(diabetes)
    trials = _trial_runs(client, result.study_name)
    assert len(trials) == 15 and {t.parent_run_id for t in trials} == {result.run_id}
    first = next(t for t in trials if t.tags["triptych.automl.trial"] == "0")
    assert first.params["estimator"] == "ridge_cv"
    assert {f"fold_{i}" for i in range(5)} | {"cv_mean", "cv_std", "duration"} <= set(first.metrics)
    assert first.metrics["cv_mean"] == pytest.approx(baseline["cv_mean"])
    assert first.tags["triptych.automl.state"] == "complete"
    assert first.fingerprint is not None and parent.fingerprint is not None
    assert first.fingerprint.code.digest == parent.fingerprint.code.digest

    files = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"leaderboard.csv", "leaderboard.json", "ensemble.json", "model"} <= files
    model_files = {a.path for a in client.list_artifacts(result.run_id, "model")}
    assert "model/model.skops" in model_files and not any(p.endswith(".pkl") for p in model_files)
    stored = json.loads(client.read_artifact(result.run_id, "leaderboard.json"))
    assert [r["number"] for r in stored] == list(board["number"])

    loaded = triptych.load_model(result.model_uri)  # skops under the default trust policy
    np.testing.assert_allclose(loaded.predict(x.head(5)), predictions)
    assert loaded.signature is not None and loaded.signature.names == list(x.columns)

    held_out = result.score(x.tail(40), diabetes["target"].tail(40))
    assert client.get_run(result.run_id).metrics["test_mse"] == pytest.approx(held_out)


def test_classification_with_accuracy_and_log_loss_and_text_labels() -> None:
    cancer = load_breast_cancer(as_frame=True).frame
    result = automl.fit(
        cancer, "target", task="classification", budget_s=60, n_trials=5, progress=False
    )
    assert result.metric == "accuracy" and result.leaderboard.set_index("number").loc[0][
        "estimator"
    ] == ("logistic")
    assert 0.9 < result.cv_score <= 1.0
    assert set(result.predict(cancer.drop(columns="target").head(20))) <= {0, 1}

    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(target=np.asarray(iris.target_names)[iris.target])
    train, test = frame.iloc[::2], frame.iloc[1::2]
    result = automl.fit(
        train,
        "target",
        task="classification",
        metric="log_loss",
        budget_s=60,
        n_trials=8,
        test=test,
        progress=False,
    )
    assert result.direction == "minimize" and 0 < result.cv_score < 0.5
    proba = result.predict_proba(test.drop(columns="target"))
    assert proba.shape == (len(test), 3) and np.allclose(proba.sum(axis=1), 1)
    assert set(result.predict(test.drop(columns="target"))) <= set(iris.target_names)
    assert result.test_score is not None and 0 < result.test_score < 0.5
    assert Client().get_run(result.run_id).metrics["test_log_loss"] == result.test_score
    loaded = triptych.load_model(result.model_uri)
    assert list(loaded.predict(test.drop(columns="target").head(3))) == list(
        result.predict(test.drop(columns="target").head(3))
    )


def test_every_estimator_of_the_space_is_saved_and_loaded_back() -> None:
    """What any search may produce loads with the default trust policy: all estimators,
    both expansions and the one-hot encoder, inside the voting ensemble."""
    import optuna

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=120),
            "b": rng.normal(size=120),
            "colour": rng.choice(np.array(["red", "green", None], dtype=object), size=120),
        }
    )
    frame["y"] = frame["a"] * 3 + (frame["colour"] == "red") + rng.normal(size=120) * 0.1
    frame["label"] = np.where(frame["y"] > frame["y"].median(), "high", "low")
    for task, target in (("regression", "y"), ("classification", "label")):
        x = frame.drop(columns=["y", "label"])
        ctx = space.make_context(task, ["a", "b"], ["colour"], 120, 96, 0)
        members = []
        for i, name in enumerate(ctx.estimators):
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=i))
            fixed: dict[str, object] = {"estimator": name, **SMALL.get(name, {})}
            if space.ESTIMATORS[name].family == "linear":
                fixed["expansion"] = ctx.expansions[i % len(ctx.expansions)]
            study.enqueue_trial(fixed)
            params = space.suggest(study.ask(), ctx)
            members.append((f"m{i}", space.build(params, ctx), 1.0))
        model = ensemble.voting(members, task).fit(x, frame[target])
        with triptych.start_run():
            info = triptych.log_model(model, "model", input_example=x.head(3))
        loaded = triptych.load_model(info.uri)
        assert list(loaded.predict(x.head(10))) == list(model.predict(x.head(10)))


SMALL = {  # what the saving and loading needs, at a fraction of the cost
    "random_forest": {"rf.n_estimators": 50},
    "extra_trees": {"et.n_estimators": 50},
    "hist_gradient_boosting": {"hgb.max_iter": 50},
}


def test_the_command_prints_the_leaderboard_and_the_model(diabetes: pd.DataFrame) -> None:
    import typer
    from typer.testing import CliRunner

    from triptych.cli.automl import automl as command

    triptych.data.add("diabetes", diabetes)
    app = typer.Typer()
    app.command("automl")(command)
    app.callback()(lambda: None)
    args = ["automl", "--data", "datasets:/diabetes@latest", "--target", "target"]
    out = CliRunner().invoke(app, [*args, "--trials", "3", "--experiment", "cli"])
    assert out.exit_code == 0, out.output
    assert "leaderboard (top 3 of 3 trials, mse, lower is better)" in out.output
    assert "ridge_cv" in out.output and "cv mse" in out.output and "run " in out.output
    out = CliRunner().invoke(app, [*args, "--trials", "2", "--json", "--experiment", "cli"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["metric"] == "mse" and len(data["leaderboard"]) == 2
    assert Client().get_run(data["run_id"]).inputs[0].source == "datasets:/diabetes@1"
    out = CliRunner().invoke(app, ["automl", "--data", "datasets:/diabetes@1", "--target", "y"])
    assert isinstance(out.exception, InvalidInput)  # main's error table turns it into one line


# -- the choice of the final model (pure functions) ---------------------------------------------
def test_the_one_standard_error_rule_prefers_the_simpler_model() -> None:
    c = ensemble.Candidate
    candidates = [
        c(number=0, cv_mean=3000.0, cv_std=200.0, n_folds=5, complexity=1),  # baseline
        c(number=1, cv_mean=2900.0, cv_std=150.0, n_folds=5, complexity=5),  # best: boosting
        c(number=2, cv_mean=2950.0, cv_std=100.0, n_folds=5, complexity=2),  # within 1 SE (67)
        c(number=3, cv_mean=2960.0, cv_std=100.0, n_folds=5, complexity=4),
    ]
    # SE of the best = 150 / sqrt(5) = 67.1: trials 1, 2, 3 qualify, 2 is the simplest
    assert ensemble.one_standard_error(candidates, "minimize").number == 2
    tight = [*candidates[:1], c(1, 2900.0, 10.0, 5, 5), *candidates[2:]]
    assert ensemble.one_standard_error(tight, "minimize").number == 1  # nothing within 4.5
    accuracy = [c(0, 0.90, 0.05, 5, 1), c(1, 0.93, 0.02, 5, 4), c(2, 0.925, 0.03, 5, 3)]
    assert ensemble.one_standard_error(accuracy, "maximize").number == 2  # 0.925 >= 0.93 - 0.0089
    with pytest.raises(ValueError, match="no complete trial"):
        ensemble.one_standard_error([c(0, float("nan"), 0.0, 5, 1)], "minimize")


def test_greedy_ensemble_selection_on_a_hand_made_example() -> None:
    y = np.array([1.0, 1.0])
    a, b, mid = np.array([2.0, 0.0]), np.array([0.0, 2.0]), np.array([1.6, 1.6])

    def mse(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean((t - p) ** 2))

    # round 1: mid alone (0.36) beats a or b (1.0); round 2: mid+a and mid+b tie at 0.34 and
    # beat mid twice (0.36), the earlier wins; round 3: adding b brings the mean to 1.2 (0.04)
    assert ensemble.greedy_ensemble([a, b, mid], y, mse, rounds=1) == [0, 0, 1]
    assert ensemble.greedy_ensemble([a, b, mid], y, mse, rounds=2) == [1, 0, 1]
    counts = ensemble.greedy_ensemble([a, b, mid], y, mse, rounds=3)
    assert counts == [1, 1, 1]
    weights = ensemble.weights(counts, [10, 11, 12])
    assert weights == pytest.approx({10: 1 / 3, 11: 1 / 3, 12: 1 / 3})
    assert ensemble.blend({10: a, 11: b, 12: mid}, weights) == pytest.approx([1.2, 1.2])
    assert ensemble.greedy_ensemble([], y, mse) == []


def test_an_ensemble_must_win_on_the_folds_by_more_than_the_noise() -> None:
    single = [3000.0, 2800.0, 3300.0, 2900.0, 3100.0]
    steady = [2960.0, 2770.0, 3250.0, 2870.0, 3060.0]  # better on every fold by 30-50
    assert ensemble.clearly_better(single, steady)
    lucky = [2700.0, 2850.0, 3350.0, 2950.0, 3150.0]  # better on average, by one fold
    assert sum(lucky) < sum(single) and not ensemble.clearly_better(single, lucky)
    assert not ensemble.clearly_better(single, single)  # no difference is no evidence


def test_a_trial_stops_once_it_could_not_end_and_be_refit_before_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sklearn.dummy import DummyRegressor

    from triptych.automl import metrics, search

    class Slow(DummyRegressor):  # type: ignore[misc]
        def fit(self, X: object, y: object) -> Slow:
            time.sleep(0.1)
            return super().fit(X, y)  # type: ignore[no-any-return]

    monkeypatch.setattr(space, "build", lambda params, ctx: Slow())
    ctx = space.make_context("regression", ["a"], [], 50, 40, 0)
    data = search.Data(pd.DataFrame({"a": np.arange(50.0)}), np.arange(50.0), np.arange(50) % 5)
    mse = metrics.get("regression", "mse")
    # 5 folds of 0.1 s, then a refit on all rows of about 0.125 s and saving it: after the
    # first fold it is clear that it cannot end by a deadline 0.4 s away, so it stops there
    started = time.time()
    out = search.evaluate({}, ctx, data, mse, deadline=started + 0.4)
    assert (out.state, out.stopped, len(out.fold_scores)) == ("pruned", "out of time", 1)
    assert time.time() < started + 0.4
    assert search.evaluate({}, ctx, data, mse, deadline=time.time() + 10).state == "complete"


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "no target column 'nope'"),
        ({"task": "clustering"}, "unknown task 'clustering'"),
        ({"metric": "accuracy"}, "unknown regression metric 'accuracy'"),
        ({"task": "classification", "metric": "mse"}, "unknown classification metric"),
        ({"target": "sex_label"}, "regression needs a numeric target"),
        ({"budget_s": 0}, "budget_s must be a positive number"),
        ({"budget_s": -5}, "budget_s must be a positive number"),
        ({"n_trials": 0}, "n_trials must be a positive integer"),
        ({"cv": 1}, "cv must be an integer >= 2"),
        ({"executor": "spark"}, "unknown executor 'spark'"),
        ({"estimators": ["gpt"]}, "estimator\\(s\\) not available for regression here: gpt"),
    ],
)
def test_bad_input_is_refused_before_anything_is_recorded(
    diabetes: pd.DataFrame, kwargs: dict[str, object], message: str
) -> None:
    frame = diabetes.assign(sex_label=np.where(diabetes["sex"] > 0, "m", "f"))
    args: dict[str, object] = {"target": "target", "progress": False, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        automl.fit(frame, **args)  # type: ignore[arg-type]
    client = Client()
    assert client.search_runs(None).items == []
    assert not list(Path.cwd().rglob("optuna.db"))


def test_a_class_with_fewer_rows_than_folds_is_refused(diabetes: pd.DataFrame) -> None:
    frame = diabetes.assign(label=["rare"] * 3 + ["common"] * (len(diabetes) - 3))
    with pytest.raises(InvalidInput, match="class 'rare' has 3 row\\(s\\), fewer than the 5"):
        automl.fit(frame, "label", task="classification", progress=False)


# -- resume ----------------------------------------------------------------------------------------
def test_a_study_stopped_and_started_again_continues(diabetes: pd.DataFrame) -> None:
    options = {"storage": "auto", "study_name": "resume", "estimators": CHEAP, "progress": False}
    first = automl.fit(diabetes, "target", n_trials=6, **options)  # type: ignore[arg-type]
    assert len(first.leaderboard) == 6
    assert (Path(".triptych") / "optuna.db").is_file()  # next to triptych.db, not inside it
    second = automl.fit(diabetes, "target", n_trials=12, **options)  # type: ignore[arg-type]
    assert sorted(second.leaderboard["number"]) == list(range(12))  # 12 in all, not 18
    client = Client()
    assert client.get_run(second.run_id).tags["triptych.automl.resumed_trials"] == "6"
    runs = _trial_runs(client, "resume")
    assert len(runs) == 12
    assert sum(r.parent_run_id == first.run_id for r in runs) == 6
    # the earlier session's out-of-fold predictions are used: its trials can be members
    board = second.leaderboard.set_index("number")
    assert board.loc[0, "run_id"] in {r.run_id for r in runs if r.parent_run_id == first.run_id}
    # a study of other data is not continued by accident
    with pytest.raises(triptych.errors.Conflict, match="was run with other data"):
        automl.fit(diabetes.iloc[:300], "target", **options)  # type: ignore[arg-type]


def test_a_killed_search_is_continued_by_the_next_run(diabetes: pd.DataFrame) -> None:
    diabetes.to_csv("diabetes.csv", index=False)
    code = (
        "from triptych import automl\n"
        "automl.fit('diabetes.csv', 'target', budget_s=120, storage='auto', "
        f"study_name='killed', estimators={CHEAP!r}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        finished = _wait_for_trials(Path(".triptych") / "optuna.db", "killed", 4, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    result = automl.fit(
        "diabetes.csv",
        "target",
        n_trials=finished + 3,
        storage="auto",
        study_name="killed",
        estimators=CHEAP,
        progress=False,
    )
    board = result.leaderboard
    assert (board["state"] != "running").sum() >= finished + 3
    assert board.set_index("number").loc[0, "estimator"] == "ridge_cv"
    tags = Client().get_run(result.run_id).tags
    assert int(tags["triptych.automl.resumed_trials"]) >= finished


def _wait_for_trials(path: Path, study: str, count: int, proc: subprocess.Popen[bytes]) -> int:
    """Finished trials of ``study`` once there are at least ``count`` (polls the database)."""
    import sqlite3

    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, "the search ended before it was killed"
        if path.exists():
            try:
                with sqlite3.connect(path) as db:
                    row = db.execute(
                        "SELECT count(*) FROM trials JOIN studies USING (study_id) "
                        "WHERE study_name = ? AND state IN ('COMPLETE', 'PRUNED', 'FAIL')",
                        (study,),
                    ).fetchone()
                if row and row[0] >= count:
                    return int(row[0])
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials after 60 s")


# -- parallel trials on PostgreSQL ---------------------------------------------------------------
@pytest.mark.postgres
def test_two_workers_on_postgresql_fill_one_study(
    diabetes: pd.DataFrame, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("TRIPTYCH_TRACKING_URI", postgres_url)
    triptych.set_tracking_uri(None)
    result = automl.fit(diabetes, "target", budget_s=12, n_jobs=2, storage="auto", progress=False)
    board = result.leaderboard
    assert sorted(board["number"]) == list(range(len(board)))  # one study, numbered 0..n-1
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            workers = conn.execute(
                text(
                    "SELECT DISTINCT value_json::json->>'worker' FROM optuna.trial_user_attributes "
                    "WHERE key = 'automl'"
                )
            ).scalars()
            assert len(set(workers)) == 2  # both processes ran trials of it
            tables = set(
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": "public"},
                ).scalars()
            )
            assert "trials" not in tables and "studies" not in tables  # in schema optuna only
    finally:
        engine.dispose()
    runs = _trial_runs(Client(), result.study_name)
    assert sorted(int(r.tags["triptych.automl.trial"]) for r in runs) == list(range(len(board)))
    assert {r.parent_run_id for r in runs} == {result.run_id}


# -- Ray -------------------------------------------------------------------------------------------
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


def test_trials_run_as_ray_tasks(diabetes: pd.DataFrame, ray_runtime: None) -> None:
    import optuna

    result = automl.fit(
        diabetes,
        "target",
        executor="ray",
        n_trials=10,
        budget_s=60,
        storage="auto",
        estimators=[*CHEAP, "random_forest"],
        progress=False,
    )
    board = result.leaderboard
    assert sorted(board["number"]) == list(range(10))
    assert board.set_index("number").loc[0, "estimator"] == "ridge_cv"
    storage = optuna.storages.RDBStorage(f"sqlite:///{Path('.triptych/optuna.db').resolve()}")
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    storage.engine.dispose()
    computed = [t for t in study.trials if "duplicate_of" not in t.user_attrs["automl"]]
    workers = {t.user_attrs["automl"]["worker"] for t in computed}
    assert not any(w.endswith(f":{os.getpid()}") for w in workers)  # in Ray workers, not here
    first = study.trials[0]
    assert len(first.intermediate_values) == 5  # the folds, reported after the task
    runs = _trial_runs(Client(), result.study_name)
    assert len(runs) == 10 and {r.parent_run_id for r in runs} == {result.run_id}
    assert triptych.load_model(result.model_uri).predict(
        diabetes.drop(columns="target").head(2)
    ).shape == (2,)


def test_an_optional_package_nothing_trusts_is_left_out_without_fitting_a_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triptych.automl import estimators

    def probe(name: str, X: object) -> list[tuple[object, object]]:
        raise AssertionError(f"probed {name}")

    monkeypatch.setattr(estimators, "probe", probe)
    space._package_loadable.cache_clear()
    try:
        assert not space._package_loadable("lightgbm", "")
        monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", "xgboost.*,numpy.Foo")
        assert not space._package_loadable("lightgbm", "xgboost.*,numpy.Foo")
        monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", "lightgbm.*")
        with pytest.raises(AssertionError, match="probed lightgbm"):
            space._package_loadable("lightgbm", "lightgbm.*")  # named: checked on a model
    finally:
        space._package_loadable.cache_clear()


@pytest.mark.parametrize(
    ("estimator", "trusted", "prefix"),
    [("lightgbm", "lightgbm.*", "lgbm"), ("xgboost", "xgboost.*", "xgb")],
)
def test_lightgbm_and_xgboost_join_the_space_only_when_trusted(
    diabetes: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    estimator: str,
    trusted: str,
    prefix: str,
) -> None:
    """Installed is not enough: their models load only with the operator's opt-in, so they
    join the search only with it, and what the search logs then loads back."""
    import optuna

    pytest.importorskip(estimator, reason=f"{estimator} is not installed (the dev extra has it)")
    with pytest.raises(InvalidInput, match=f"not available for regression here: {estimator}"):
        automl.fit(diabetes, "target", budget_s=30, n_trials=2, estimators=[estimator])

    monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", trusted)
    result = automl.fit(
        diabetes, "target", budget_s=60, n_trials=3, estimators=[estimator], progress=False
    )
    board = result.leaderboard
    assert set(board["estimator"]) == {"ridge_cv", estimator}  # the baseline always stays
    assert (board.loc[board["estimator"] == estimator, "state"] == "complete").all()
    x = diabetes.drop(columns="target")
    assert np.allclose(triptych.load_model(result.model_uri).predict(x), result.predict(x))

    # a boosting model as the search builds it: saved, loaded back, refused without the opt-in
    ctx = space.make_context("regression", list(x.columns), [], len(x), len(x) * 4 // 5, 0)
    study = optuna.create_study()
    study.enqueue_trial({"estimator": estimator, f"{prefix}.n_estimators": 50})
    model = space.build(space.suggest(study.ask(), ctx), ctx).fit(x, diabetes["target"])
    with triptych.start_run():
        info = triptych.log_model(model, "model", input_example=x.head(3))
    assert np.allclose(triptych.load_model(info.uri).predict(x), model.predict(x))
    monkeypatch.delenv("TRIPTYCH_TRUSTED_TYPES")
    with pytest.raises(PermissionDenied, match=estimator):
        triptych.load_model(info.uri, client=Client())  # a client reads the settings once
