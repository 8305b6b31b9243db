"""log_model / load_model: the model folder, the manifest, signatures and input checks."""

from __future__ import annotations

import hashlib
import io
import json
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import triptych
from triptych.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    MissingDependency,
    PermissionDenied,
    TriptychWarning,
)
from triptych.models import flavours
from triptych.models.packaging import requirements
from triptych.tracking.fingerprint import environment


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIPTYCH_TRUSTED_TYPES", raising=False)


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def ridge(diabetes: tuple[pd.DataFrame, pd.Series]) -> Ridge:
    X, y = diabetes
    return Ridge(alpha=0.5).fit(X, y)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "city": rng.choice(["lyon", "oslo", "pune"], 60),
            "income": rng.normal(50, 10, 60).round(1),
            "age": rng.integers(18, 80, 60),
        }
    )


@pytest.fixture(scope="module")
def pipeline(people: pd.DataFrame) -> Pipeline:
    y = people.income * 2 + people.age + (people.city == "oslo") * 5
    encode = ColumnTransformer(
        [
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("numbers", StandardScaler(), ["income", "age"]),
        ]
    )
    return Pipeline([("encode", encode), ("ridge", Ridge())]).fit(people, y)


def test_ridge_round_trip_on_diabetes(
    diabetes: tuple[pd.DataFrame, pd.Series], ridge: Ridge
) -> None:
    X, _ = diabetes
    with triptych.start_run() as run:
        logged = triptych.log_model(ridge, input_example=X.head(3))
    assert logged.uri == f"runs:/{run.run_id}/model"
    assert (logged.run_id, logged.path) == (run.run_id, "model")
    client = triptych.Client()
    files = sorted(e.path for e in client.store.walk_artifacts(run.run_id, "model"))
    assert files == ["model/input_example.json", "model/manifest.json", "model/model.skops"]
    example = json.loads(client.read_artifact(run.run_id, "model/input_example.json"))
    assert example == json.loads(X.head(3).to_json(orient="records"))

    model = triptych.load_model(logged.uri)
    assert isinstance(model.raw, Ridge) and model.uri == logged.uri
    assert model.manifest == logged.manifest
    predictions = model.predict(X)
    assert isinstance(predictions, np.ndarray)
    np.testing.assert_array_equal(predictions, ridge.predict(X))


def test_pipeline_with_column_transformer_on_a_dataframe(
    people: pd.DataFrame, pipeline: Pipeline
) -> None:
    with triptych.start_run():
        logged = triptych.log_model(pipeline, "pipe", input_example=people.head(5))
    model = triptych.load_model(logged.uri)
    assert model.signature is not None
    assert model.signature.to_dict() == {
        "inputs": [
            {"name": "city", "dtype": "string"},
            {"name": "income", "dtype": "float"},
            {"name": "age", "dtype": "int"},
        ],
        "output": {"dtype": "float", "shape": [-1]},
    }
    expected = pipeline.predict(people)
    np.testing.assert_array_equal(model.predict(people), expected)
    # the same rows as a dict of lists, as records, and with the columns shuffled
    head = people.head(4)
    close = np.testing.assert_allclose
    close(model.predict(head.to_dict(orient="list")), expected[:4], rtol=1e-12)
    close(model.predict(head.to_dict(orient="records")), expected[:4], rtol=1e-12)
    close(model.predict(head[["age", "city", "income"]]), expected[:4], rtol=1e-12)
    # ints where floats are expected are fine
    close(
        model.predict({"city": ["oslo"], "income": [50], "age": [40]}),
        pipeline.predict(pd.DataFrame({"city": ["oslo"], "income": [50.0], "age": [40]})),
        rtol=1e-12,
    )


def test_signature_from_the_estimator_when_there_is_no_example(
    diabetes: tuple[pd.DataFrame, pd.Series], ridge: Ridge
) -> None:
    X, y = diabetes
    bare = Ridge().fit(X.to_numpy(), y)  # fitted without column names
    with triptych.start_run():
        named = triptych.log_model(ridge, "named")
        unnamed = triptych.log_model(bare, "unnamed")
    assert named.manifest.signature == {
        "inputs": [{"name": c, "dtype": None} for c in X.columns],
        "output": None,
    }
    assert unnamed.manifest.signature is not None
    assert [c["name"] for c in unnamed.manifest.signature["inputs"]] == [str(i) for i in range(10)]
    model = triptych.load_model(unnamed.uri)
    np.testing.assert_array_equal(model.predict(X.to_numpy()), bare.predict(X.to_numpy()))
    with pytest.raises(InvalidInput, match="takes 10 columns"):
        model.predict(X.to_numpy()[:, :3])
    # a DataFrame with the example's column names works too
    frame = pd.DataFrame(X.to_numpy(), columns=[str(i) for i in range(10)])
    np.testing.assert_allclose(model.predict(frame), bare.predict(X.to_numpy()), rtol=1e-12)


def test_signature_from_an_example_uses_the_columns_the_model_was_fitted_on(
    diabetes: tuple[pd.DataFrame, pd.Series], ridge: Ridge
) -> None:
    X, _ = diabetes
    wider = X.head(5).assign(comment="x")  # a column the model never saw: left out
    with triptych.start_run():
        logged = triptych.log_model(ridge, input_example=wider[list(reversed(wider.columns))])
        with pytest.raises(InvalidInput, match=r"lacks column.*'bmi'"):
            triptych.log_model(ridge, "other", input_example=X.drop(columns="bmi").head())
    assert logged.manifest.signature is not None
    assert [c["name"] for c in logged.manifest.signature["inputs"]] == list(X.columns)


def test_explicit_signature_is_checked_against_the_example(
    people: pd.DataFrame, pipeline: Pipeline
) -> None:
    signature = {
        "inputs": [
            {"name": "city", "dtype": "category"},
            {"name": "income", "dtype": "float"},
            {"name": "age", "dtype": "float"},
        ]
    }
    with triptych.start_run():
        logged = triptych.log_model(pipeline, signature=signature, input_example=people.head())
        with pytest.raises(InvalidInput, match="unknown dtype 'text'"):
            triptych.log_model(
                pipeline, "bad", signature={"inputs": [{"name": "city", "dtype": "text"}]}
            )
        with pytest.raises(InvalidInput, match="'city' should be int"):
            triptych.log_model(
                pipeline,
                "wrong",
                signature={"inputs": [{"name": "city", "dtype": "int"}]},
                input_example=people[["city"]].head(),
            )
    assert logged.manifest.signature is not None
    assert logged.manifest.signature["inputs"] == signature["inputs"]
    assert logged.manifest.signature["output"] == {"dtype": "float", "shape": [-1]}


def test_manifest_pins_requirements_and_names_the_run_and_fingerprint(
    people: pd.DataFrame, pipeline: Pipeline
) -> None:
    with triptych.start_run() as run:
        triptych.log_input(people, name="people")  # changes the fingerprint after the start
        logged = triptych.log_model(pipeline, input_example=people.head())
    client = triptych.Client()
    info = client.get_run(run.run_id)
    manifest = json.loads(client.read_artifact(run.run_id, "model/manifest.json"))
    assert manifest == logged.manifest.to_dict()
    assert info.fingerprint is not None
    assert manifest["fingerprint"] == info.fingerprint.digest
    assert manifest["environment_digest"] == info.fingerprint.env_digest
    assert manifest["run_id"] == run.run_id
    assert manifest["triptych_version"] == triptych.__version__
    assert (manifest["format_version"], manifest["flavour"]) == (1, "sklearn")
    assert (manifest["serializer"], manifest["model_class"]) == (
        "skops",
        "sklearn.pipeline.Pipeline",
    )
    assert manifest["requirements"] == [
        f"{name}=={version(name)}" for name in ("numpy", "pandas", "scikit-learn", "scipy", "skops")
    ]
    data = client.read_artifact(run.run_id, "model/model.skops")
    assert manifest["model_file"] == {
        "name": "model.skops",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def test_input_is_checked_against_the_signature(people: pd.DataFrame, pipeline: Pipeline) -> None:
    with triptych.start_run():
        logged = triptych.log_model(pipeline, input_example=people.head())
    model = triptych.load_model(logged.uri)
    rows = people.head(3)
    with pytest.raises(InvalidInput, match=r"missing column\(s\) 'age'") as missing:
        model.predict(rows.drop(columns="age"))
    assert "city (string), income (float), age (int)" in str(missing.value)
    with pytest.raises(InvalidInput, match="'income' should be float but holds string"):
        model.predict(rows.assign(income=["high", "low", "mid"]))
    with pytest.raises(InvalidInput, match="'age' should be int but holds float"):
        model.predict(rows.assign(age=[30.5, 40.0, 50.0]))
    with pytest.raises(InvalidInput, match="'city' should be string but holds int"):
        model.predict(rows.assign(city=[1, 2, 3]))
    with pytest.warns(TriptychWarning, match="not in the model's signature: 'note', 'score'"):
        out = model.predict(rows.assign(note="x", score=1.0))
    np.testing.assert_array_equal(out, pipeline.predict(rows))


def test_models_that_are_not_supported_are_refused_clearly(ridge: Ridge) -> None:
    with triptych.start_run():
        with pytest.raises(InvalidInput, match="no flavour") as unknown:
            triptych.log_model({"weights": [1, 2]})
        with pytest.raises(InvalidInput, match="has no predict"):
            triptych.log_model(StandardScaler().fit([[1.0], [2.0]]))
        with pytest.raises(InvalidInput, match="unknown serializer 'joblib'"):
            triptych.log_model(ridge, serializer="joblib")
    for name in ("sklearn", "lightgbm", "xgboost"):
        assert name in str(unknown.value)
    with pytest.raises(InvalidInput, match="no active run"):
        triptych.log_model(ridge)


def test_lightgbm_and_xgboost_are_recognised_pinned_and_loaded_only_when_trusted(
    diabetes: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    lightgbm = pytest.importorskip("lightgbm", reason="the dev extra installs it")
    xgboost = pytest.importorskip("xgboost", reason="the dev extra installs it")
    X, y = diabetes
    lgbm = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y)
    xgb = xgboost.XGBRegressor(n_estimators=5).fit(X, y)
    assert flavours.detect(lgbm).name == "lightgbm"
    assert flavours.detect(xgb).name == "xgboost"
    inside = Pipeline([("scale", StandardScaler()), ("model", lgbm)])
    assert flavours.detect(inside).name == "sklearn"
    pins = requirements(inside, flavours.detect(inside), "skops", environment())
    assert f"lightgbm=={version('lightgbm')}" in pins
    assert f"scikit-learn=={version('scikit-learn')}" in pins

    with triptych.start_run(), pytest.warns(TriptychWarning, match=r"lightgbm\.basic\.Booster"):
        logged = triptych.log_model(lgbm)
    assert logged.manifest.flavour == "lightgbm"
    assert f"lightgbm=={version('lightgbm')}" in logged.manifest.requirements
    with pytest.raises(PermissionDenied, match="lightgbm"):  # not trusted by default
        triptych.load_model(logged.uri)
    loaded = triptych.load_model(logged.uri, trusted_types=["lightgbm.*"])
    assert np.allclose(loaded.predict(X.head(5)), lgbm.predict(X.head(5)))

    # on a machine without LightGBM, loading says what to install, before reading the file
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "lightgbm" else real(n, *a)
    )
    with pytest.raises(MissingDependency, match="lightgbm is not installed"):
        triptych.load_model(logged.uri, trusted_types=["lightgbm.*"])


def test_a_swapped_model_file_is_refused(ridge: Ridge) -> None:
    with triptych.start_run() as run:
        logged = triptych.log_model(ridge)
    other = io.BytesIO()
    sio.dump(Ridge(alpha=9.0).fit([[0.0], [1.0]], [0.0, 1.0]), other)
    client = triptych.Client()
    client.log_bytes(run.run_id, other.getvalue(), "model/model.skops")  # a valid skops file
    with pytest.raises(IntegrityError, match=r"model\.skops of runs:/.* does not match"):
        triptych.load_model(logged.uri)


def test_a_model_name_is_used_once_per_run(ridge: Ridge) -> None:
    with triptych.start_run():
        triptych.log_model(ridge, "m")
        with pytest.raises(Conflict, match="already has artifacts at 'm'"):
            triptych.log_model(ridge, "m")
        nested = triptych.log_model(ridge, "models/ridge")
    assert nested.uri.endswith("/models/ridge")
    assert isinstance(triptych.load_model(nested.uri).raw, Ridge)


def test_log_to_a_given_run(ridge: Ridge) -> None:
    with triptych.start_run() as outer, triptych.start_run(nested=True) as inner:
        logged = triptych.log_model(ridge, run=outer)
    assert logged.run_id == outer.run_id != inner.run_id


def test_models_addresses_resolve_through_the_registry(
    diabetes: tuple[pd.DataFrame, pd.Series], ridge: Ridge
) -> None:
    from triptych.models import registry

    with triptych.start_run():
        logged = triptych.log_model(ridge)
    registry.register(logged.uri, "ridge")
    model = triptych.load_model("models:/ridge@latest")
    assert model.uri == logged.uri
    np.testing.assert_array_equal(model.predict(diabetes[0]), ridge.predict(diabetes[0]))


def test_models_addresses_without_a_registry_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from triptych.models import model as model_module

    real = model_module.importlib.util.find_spec
    monkeypatch.setattr(
        model_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "triptych.models.registry" else real(name, *a),
    )
    with pytest.raises(InvalidInput, match="no model registry"):
        triptych.load_model("models:/ridge@champion")


def test_what_is_not_a_model_is_refused_with_the_reason(ridge: Ridge) -> None:
    from triptych.errors import NotFound

    with triptych.start_run() as run:
        triptych.log_text("hello", "notes/readme.txt")
        logged = triptych.log_model(ridge)
    with pytest.raises(NotFound, match=r"no manifest\.json"):
        triptych.load_model(f"runs:/{run.run_id}/notes")
    with pytest.raises(InvalidInput, match="no model path"):
        triptych.load_model(f"runs:/{run.run_id}")
    client = triptych.Client()
    good = logged.manifest.to_dict()
    for change, message in [
        ({"format_version": 99}, "newer triptych"),
        ({"serializer": "dill"}, "serializer 'dill'"),
        ({"flavour": "torch"}, "unknown model flavour 'torch'"),
        ({"model_file": {**good["model_file"], "name": "../../x.skops"}}, "not '../../x.skops'"),
        ({"model_file": {**good["model_file"], "sha256": "abc"}}, "sha256 'abc'"),
    ]:
        client.log_text(run.run_id, json.dumps({**good, **change}), "model/manifest.json")
        with pytest.raises(InvalidInput, match=re.escape(message)):
            triptych.load_model(logged.uri)
