"""Safe by default: loading a model never runs code the platform policy did not allow.

Each hostile file here really does write its marker when loaded the naive way (checked), and
the default ``load_model`` refuses it before the marker appears."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
import skops.io as sio
from sklearn.datasets import load_diabetes
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import triptych
from triptych.errors import (
    ConfigError,
    IntegrityError,
    InvalidInput,
    PermissionDenied,
    TriptychWarning,
)
from triptych.models.trust import TrustPolicy, parse_entries
from triptych.testing import reset_process_state

X, Y = load_diabetes(return_X_y=True)


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIPTYCH_TRUSTED_TYPES", raising=False)


class Booby(Ridge):
    """A model whose unpickling (skops calls ``__setstate__``) writes a marker file."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker_"]).write_text("pwned")
        super().__setstate__(state)


class Bomb(Ridge):
    """A model whose pickle creates a marker file when loaded: ``open(marker, "w")``."""

    def __reduce__(self) -> Any:
        return (open, (self.marker_, "w"))


class Benign(Ridge):
    """A custom model type with nothing hostile about it."""


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _plant(run_id: str, name: str, data: bytes, serializer: str = "skops", **extra: Any) -> str:
    """Write a model folder by hand, as someone with write access to the store could: any
    model file, with a manifest that matches it."""
    file = {"skops": "model.skops", "pickle": "model.pkl"}[serializer]
    manifest = {
        "format_version": 1,
        "flavour": "sklearn",
        "serializer": serializer,
        "model_file": {"name": file, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "model_class": "sklearn.linear_model._ridge.Ridge",
        "signature": None,
        "requirements": [],
        "run_id": run_id,
        "fingerprint": None,
        "triptych_version": triptych.__version__,
        **extra,
    }
    client = triptych.Client()
    client.log_bytes(run_id, data, f"{name}/{file}")
    client.log_text(run_id, json.dumps(manifest), f"{name}/manifest.json")
    return f"runs:/{run_id}/{name}"


def _run_id() -> str:
    with triptych.start_run() as run:
        pass
    return run.run_id


def _rewrite_schema(data: bytes, change: Any) -> bytes:
    """A skops file with its schema.json edited by ``change(schema)``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    change(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in source.namelist():
            z.writestr(item, json.dumps(schema) if item == "schema.json" else source.read(item))
    return out.getvalue()


def test_skops_file_with_an_untrusted_class_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    model = Booby().fit(X, Y)
    model.marker_ = str(marker)
    with triptych.start_run(), pytest.warns(TriptychWarning, match=re.escape(_name(Booby))):
        logged = triptych.log_model(model)  # the warning says it at logging time
    with pytest.raises(PermissionDenied) as refused:
        triptych.load_model(logged.uri)
    message = str(refused.value)
    assert _name(Booby) in message
    assert "TRIPTYCH_TRUSTED_TYPES" in message and "trusted_types=" in message
    assert not marker.exists()
    # the file is really hostile: trusting its type runs the code
    triptych.load_model(logged.uri, trusted_types=[_name(Booby)])
    assert marker.read_text() == "pwned"


def test_pickle_needs_allow_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    model = Bomb().fit(X, Y)
    model.marker_ = str(marker)
    with triptych.start_run():
        logged = triptych.log_model(model, serializer="pickle")
    assert logged.manifest.model_file == "model.pkl"
    with pytest.raises(PermissionDenied, match=r"pickle file.*allow_pickle=True"):
        triptych.load_model(logged.uri)
    with pytest.raises(PermissionDenied, match="pickle"):  # trusting types does not help
        triptych.load_model(logged.uri, trusted_types=[_name(Bomb), "builtins.open"])
    assert not marker.exists()
    loaded = triptych.load_model(logged.uri, allow_pickle=True)  # the explicit opt-in
    loaded.raw.close()
    assert marker.exists()


def test_an_honest_pickle_loads_with_allow_pickle() -> None:
    model = Ridge().fit(X, Y)
    with triptych.start_run():
        logged = triptych.log_model(model, serializer="pickle")
    loaded = triptych.load_model(logged.uri, allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_pickle_posing_as_a_skops_file_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    bomb = Bomb()
    bomb.marker_ = str(marker)
    uri = _plant(_run_id(), "model", pickle.dumps(bomb), serializer="skops")
    with pytest.raises(IntegrityError, match="not a readable skops file"):
        triptych.load_model(uri, allow_pickle=True)
    assert not marker.exists()


def test_scipy_stats_is_not_trusted_because_it_runs_code_from_the_file(tmp_path: Path) -> None:
    """scipy.stats distributions ``exec`` a template kept in their state when unpickled: a
    naive "trust every scipy.* type" rule would run this file's code at load time."""
    marker = tmp_path / "marker.txt"

    def inject(schema: dict[str, Any]) -> None:
        node = schema["content"]["content"]["_parse_arg_template"]
        code = f"with open({str(marker)!r}, 'w') as f: f.write('pwned')\n"
        node["content"] = json.dumps(code + json.loads(node["content"]))

    data = _rewrite_schema(sio.dumps(scipy.stats.norm), inject)
    name = "scipy.stats._continuous_distns.norm_gen"
    assert sio.get_untrusted_types(data=data) == [name]
    sio.loads(data, trusted=[name])  # what trusting it would do
    assert marker.read_text() == "pwned"
    marker.unlink()

    uri = _plant(_run_id(), "model", data)
    with pytest.raises(PermissionDenied, match=re.escape(name)):
        triptych.load_model(uri)
    assert not marker.exists()


def test_names_that_only_look_trusted_are_resolved_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sklearn.utils.discovery.import_module`` is ``importlib.import_module``: a prefix rule
    on names alone would let a file import any module (here one that writes a marker)."""
    marker = tmp_path / "marker.txt"
    hostile = f"with open({str(marker)!r}, 'w') as f: f.write('pwned')\n"
    (tmp_path / "hostile_module.py").write_text(hostile)
    monkeypatch.syspath_prepend(str(tmp_path))

    def call(schema: dict[str, Any]) -> None:
        version = schema["_skops_version"]
        schema.clear()
        schema.update(
            {
                "__class__": "import_module",
                "__module__": "sklearn.utils.discovery",
                "__loader__": "ConstructorFromReduceNode",
                "content": {
                    "__class__": "tuple",
                    "__module__": "builtins",
                    "__loader__": "TupleNode",
                    "content": [
                        {
                            "__class__": "str",
                            "__module__": "builtins",
                            "__loader__": "JsonNode",
                            "content": json.dumps("hostile_module"),
                            "is_json": True,
                        }
                    ],
                },
                "protocol": 2,
                "_skops_version": version,
            }
        )

    data = _rewrite_schema(sio.dumps(Ridge()), call)
    name = "sklearn.utils.discovery.import_module"
    assert sio.get_untrusted_types(data=data) == [name]
    uri = _plant(_run_id(), "model", data)
    with pytest.raises(PermissionDenied, match=re.escape(name)):
        triptych.load_model(uri)
    assert not marker.exists()
    assert "hostile_module" not in sys.modules
    # with the name trusted explicitly, skops does import it
    sio.loads(data, trusted=[name])
    assert marker.exists()
    monkeypatch.delitem(sys.modules, "hostile_module")


def test_the_setting_extends_the_policy_for_a_benign_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = Benign().fit(X, Y)
    with triptych.start_run(), pytest.warns(TriptychWarning, match=re.escape(_name(Benign))):
        logged = triptych.log_model(model)
    with pytest.raises(PermissionDenied, match=re.escape(_name(Benign))):
        triptych.load_model(logged.uri)

    module = Benign.__module__
    for setting in (_name(Benign), f"{module}.*", f"numpy.sum, {module}.*"):
        monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", setting)
        reset_process_state()
        loaded = triptych.load_model(logged.uri)
        assert type(loaded.raw) is Benign
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", f"{module}.Other, {module}x.*")
    reset_process_state()
    with pytest.raises(PermissionDenied):
        triptych.load_model(logged.uri)
    monkeypatch.setenv("TRIPTYCH_TRUSTED_TYPES", "*")
    reset_process_state()
    with pytest.raises(ConfigError, match="TRIPTYCH_TRUSTED_TYPES"):
        triptych.load_model(logged.uri)

    monkeypatch.delenv("TRIPTYCH_TRUSTED_TYPES")
    reset_process_state()
    loaded = triptych.load_model(logged.uri, trusted_types=f"{module}.Benign")  # per call
    assert type(loaded.raw) is Benign


def test_a_manifest_cannot_trust_types_for_itself() -> None:
    model = Benign().fit(X, Y)
    with triptych.start_run() as run, pytest.warns(TriptychWarning):
        logged = triptych.log_model(model)
    client = triptych.Client()
    manifest = json.loads(client.read_artifact(run.run_id, "model/manifest.json"))
    manifest["trusted_types"] = [_name(Benign), f"{Benign.__module__}.*"]
    manifest["trusted"] = [_name(Benign)]
    client.log_text(run.run_id, json.dumps(manifest), "model/manifest.json")
    with pytest.raises(PermissionDenied, match=re.escape(_name(Benign))):
        triptych.load_model(logged.uri)


def test_common_scikit_learn_models_load_under_the_default_policy() -> None:
    """skops alone refuses tree internals (Tree, TreePredictor) and scipy sparse matrices;
    the default policy trusts scikit-learn, numpy and scipy classes."""
    labels = Y > 140
    models = [
        HistGradientBoostingRegressor(max_iter=5).fit(X, Y),
        GradientBoostingRegressor(n_estimators=5).fit(X, Y),
        RandomForestClassifier(n_estimators=3, random_state=0).fit(X, labels),
        Pipeline([("onehot", OneHotEncoder(handle_unknown="ignore")), ("ridge", Ridge())]).fit(
            X[:, :2].round(2), Y
        ),
    ]
    with triptych.start_run():
        logged = [triptych.log_model(m, f"m{i}") for i, m in enumerate(models)]
    for model, entry in zip(models, logged, strict=True):
        loaded = triptych.load_model(entry.uri)
        data = X[:, :2].round(2) if isinstance(model, Pipeline) else X
        np.testing.assert_array_equal(loaded.predict(data), model.predict(data))


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("numpy.dtype", True),
        ("builtins.frozenset", True),
        ("builtins.eval", False),
        ("builtins.open", False),
        ("functools.partial", False),
        ("numpy.load", False),  # a function: listed explicitly or not at all
        ("numpy.memmap", False),  # a class that writes files
        ("numpy.DataSource", False),  # an alias of numpy.lib._datasource.DataSource
        ("scipy.stats._continuous_distns.norm_gen", False),
        ("scipy.LowLevelCallable", False),
        ("sklearn.datasets._lfw.remove", False),  # os.remove, re-exported
        ("sklearn.utils.discovery.import_module", False),  # importlib.import_module
        ("sklearn.feature_selection._univariate_selection.f_classif", False),  # a function
        ("sklearn.utils._testing.TempMemmap", False),
        ("sklearnx.Model", False),
        ("sklearn.linear_model._ridge.Ridge.predict", False),  # a bound method
        ("sklearn.no_such_module.Thing", False),
    ],
)
def test_default_policy(name: str, allowed: bool) -> None:
    assert TrustPolicy().allows(name) is allowed


def test_operator_entries() -> None:
    policy = TrustPolicy.from_entries(parse_entries("numpy.sum, sklearn.utils.*", "trusted_types"))
    assert policy.allows("numpy.sum")
    assert policy.allows("sklearn.utils._testing.TempMemmap")  # an explicit opt-in
    assert not policy.allows("numpy.mean")
    # a prefix still checks where the object really lives
    assert not policy.allows("sklearn.utils.discovery.import_module")
    for bad in ("*", "numpy", "numpy.*.x", "os.system()", "numpy..sum"):
        with pytest.raises(InvalidInput, match="invalid trusted type"):
            parse_entries(bad, "trusted_types")
