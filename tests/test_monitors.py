"""Monitors over real deployments of registered models trained on registered data.

The store half (shapes, uniqueness) runs in the contract suite on SQLite and PostgreSQL
(``triptych.testing.monitoring_contract``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import triptych
from triptych import deployments
from triptych.data import registry as datasets
from triptych.errors import AlreadyExists, InvalidInput, NotFound, TriptychError
from triptych.models import registry
from triptych.monitoring import alerts, monitors
from triptych.monitoring.webhooks import Allow
from triptych.store.entities import MonitorThresholds


@pytest.fixture
def deployed() -> str:
    """diabetes v1 trained on datasets:/diabetes@2 (v1 is other data), deployed as
    ``diabetes``; returns the run id."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = x.assign(target=y)
    datasets.add("diabetes", frame.head(100))
    datasets.add("diabetes", frame)
    with triptych.start_run(experiment="diabetes") as run:
        triptych.log_input("datasets:/diabetes@2")
        triptych.log_model(Ridge().fit(x, y), "model", input_example=x.head(2))
    registry.register(f"runs:/{run.run_id}/model", "diabetes")
    registry.set_alias("diabetes", "champion", 1)
    deployments.create("diabetes", "models:/diabetes@champion")
    return run.run_id


def test_create_defaults_to_the_training_data(deployed: str) -> None:
    m = monitors.create(
        "deployments:/diabetes",
        window="15m",
        thresholds={"psi": 0.25, "ks": None},
        webhooks=["https://hooks.example.com/a"],
        cooldown="2h",
        actor="ana",
    )
    assert (m.name, m.reference, m.window_s, m.cooldown_s, m.created_by) == (
        "diabetes", "datasets:/diabetes@2", 900, 7200, "ana",
    )  # fmt: skip
    assert m.thresholds == MonitorThresholds(psi=0.25, ks=None)
    assert m.webhooks == ("https://hooks.example.com/a",)
    assert monitors.get("diabetes") == m == monitors.list()[0]
    with pytest.raises(AlreadyExists, match="already has a monitor"):
        monitors.create("diabetes")


def test_explicit_reference_is_pinned_and_update_keeps_the_rest(deployed: str) -> None:
    m = monitors.create("diabetes", reference="datasets:/diabetes@latest")
    assert m.reference == "datasets:/diabetes@2"  # @latest pinned at creation
    changed = monitors.update("diabetes", reference="diabetes@1", thresholds={"psi": 0.5})
    assert (changed.reference, changed.window_s) == ("datasets:/diabetes@1", 3600)
    assert changed.thresholds == MonitorThresholds(psi=0.5)
    monitors.delete("diabetes")
    assert monitors.list() == []
    with pytest.raises(NotFound):
        monitors.delete("diabetes")


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"window": "soon"}, InvalidInput, "invalid window"),
        ({"window": "10s"}, InvalidInput, "between 60s"),
        ({"window": "1000d"}, InvalidInput, "90 days"),
        ({"cooldown": "x"}, InvalidInput, "invalid cooldown"),
        ({"thresholds": {"pst": 0.2}}, InvalidInput, "unknown threshold 'pst'"),
        ({"thresholds": {"drift_share": 2}}, InvalidInput, "drift_share"),
        ({"webhooks": ["ftp://example.com/x"]}, InvalidInput, "http"),
        ({"reference": "datasets:/nope@1"}, NotFound, "nope"),
        ({"reference": "datasets:/diabetes@9"}, NotFound, "diabetes"),
        ({"reference": "not a ref!"}, InvalidInput, "invalid dataset"),
    ],
)
def test_bad_input_writes_nothing(
    deployed: str, kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        monitors.create("diabetes", **kwargs)  # type: ignore[arg-type]
    assert monitors.list() == []


def test_unknown_deployment_is_refused() -> None:
    with pytest.raises(NotFound, match="deployment 'ghost' not found"):
        monitors.create("ghost", reference="datasets:/x@1")
    with pytest.raises(InvalidInput, match="deployment name"):
        monitors.create("bad/name")
    assert monitors.list() == []


def test_model_without_registered_training_data_needs_a_reference() -> None:
    from sklearn.linear_model import LinearRegression

    with triptych.start_run(experiment="x") as run:
        triptych.log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model")
    deployments.create("plain", f"runs:/{run.run_id}/model")
    with pytest.raises(NotFound, match="no registered training data") as e:
        monitors.create("plain")
    assert "--reference" in (e.value.hint or "")
    assert monitors.list() == []


# -- the CLI ----------------------------------------------------------------------------------
def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from triptych.cli.main import app

    return CliRunner().invoke(app, list(args))


def _ok(*args: str) -> str:
    out = _cli(*args)
    assert out.exit_code == 0, (out.output, out.exception)
    return str(out.output)


def test_cli_create_list_show_alerts_ack(deployed: str) -> None:
    made = json.loads(_ok(
        "monitor", "create", "diabetes", "--window", "30m", "--threshold", "psi=0.3",
        "--threshold", "ks=off", "--webhook", "https://hooks.example.com/T0/secret", "--json",
    ))  # fmt: skip
    assert (made["reference"], made["window_s"]) == ("datasets:/diabetes@2", 1800)
    assert (made["thresholds"]["psi"], made["thresholds"]["ks"]) == (0.3, None)
    assert made["webhooks"] == ["https://hooks.example.com/…"]  # never the secret path
    assert "diabetes@2" in _ok("monitor", "list")
    alert = alerts.raise_alert("diabetes", "drift", "age", "warning", "psi 0.31", allow=Allow())
    shown = _ok("monitor", "show", "diabetes")
    assert "psi 0.31" in shown and "secret" not in shown
    listed = json.loads(_ok("monitor", "alerts", "diabetes", "--status", "open", "--json"))
    assert [a["id"] for a in listed] == [alert.alert.id]
    assert json.loads(_ok("monitor", "ack", str(alert.alert.id), "--json"))["status"] == (
        "acknowledged"
    )
    assert "resolved" in _ok("monitor", "ack", str(alert.alert.id), "--resolve")
    _ok("monitor", "delete", "diabetes")
    assert "no monitors" in _ok("monitor", "list")


@pytest.mark.parametrize(
    "args, words",
    [
        (("monitor", "create", "ghost"), "deployment 'ghost' not found"),
        (("monitor", "create", "diabetes", "--window", "2x"), "invalid window"),
        (("monitor", "create", "diabetes", "--threshold", "psi"), "NAME=VALUE"),
        (("monitor", "create", "diabetes", "--threshold", "psi=high"), "number or 'off'"),
        (("monitor", "ack", "999"), "alert 999 not found"),
        (("monitor", "alerts", "--status", "closed"), "invalid alert status"),
    ],
)
def test_cli_mistakes_raise_clear_errors(deployed: str, args: tuple[str, ...], words: str) -> None:
    """``triptych.cli.main.run`` prints these as one line with the fix (see test_deployments)."""
    out = _cli(*args)
    assert isinstance(out.exception, TriptychError) and words in str(out.exception)
    assert monitors.list() == []
