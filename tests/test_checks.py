"""Monitor checks over real prediction logs (written by a PredictionLog into a serving run,
as the server writes them) of a real deployed model, with known shifts and none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

import triptych
from triptych import deployments
from triptych.data import registry as datasets
from triptych.errors import InvalidInput, NotFound
from triptych.models import registry
from triptych.monitoring import alerts, checks, labels, monitors
from triptych.serving import ids, predlog
from triptych.serving.predlog import Prediction, PredictionLog
from triptych.store.entities import RunSpec
from triptych.tracking.client import Client

MINUTE = 60_000
T0 = 1_790_000_000_000 // 3_600_000 * 3_600_000


@pytest.fixture
def model() -> Ridge:
    """diabetes v1 (Ridge on datasets:/diabetes@1, mse logged) deployed and monitored."""
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    datasets.add("diabetes", x.assign(target=y))
    ridge = Ridge(alpha=0.5).fit(x, y)
    with triptych.start_run(experiment="diabetes") as run:
        triptych.log_input("datasets:/diabetes@1")
        triptych.log_metric("mse", float(mean_squared_error(y, ridge.predict(x))))
        triptych.log_model(ridge, "model", input_example=x.head(2))
    registry.register(f"runs:/{run.run_id}/model", "diabetes")
    registry.set_alias("diabetes", "champion", 1)
    deployments.create("diabetes", "models:/diabetes@champion")
    monitors.create("diabetes", window="10m")
    return ridge


def serve(
    rows: pd.DataFrame, ridge: Ridge, start_ms: int, *, variant: str = "primary"
) -> list[str]:
    """Log one request per row, a second apart from ``start_ms``, as the server would."""
    client = Client()
    experiment = client.store.get_or_create_experiment(predlog.SERVING_EXPERIMENT)
    run = client.store.create_run(
        RunSpec(
            experiment.experiment_id,
            name="serve diabetes",
            start_time=start_ms - 1000,
            tags={predlog.TARGET_TAG: "deployments:/diabetes", predlog.PID_TAG: "1"},
            heartbeat_timeout=10**6,
        )
    )
    log = PredictionLog(client, run.run_id, flush_seconds=3600)
    answers = ridge.predict(rows)
    rids = []
    for i, (record, answer) in enumerate(zip(rows.to_dict("records"), answers, strict=True)):
        when = start_ms + i * 1000
        rid = ids.new_request_id(when)
        rids.append(rid)
        log.record(
            Prediction(
                rid,
                when,
                "diabetes",
                variant,
                "diabetes",
                1,
                f"runs:/{'a' * 32}/model",
                [record],
                [float(answer)],
                0.4,
                200,
            )
        )
    log.close()
    return rids


def features() -> pd.DataFrame:
    return load_diabetes(as_frame=True).data


def test_same_distribution_raises_nothing(model: Ridge) -> None:
    rows = features().sample(300, random_state=1, replace=True)
    serve(rows, model, T0)
    result = checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    assert result.rows == 300 and result.model_version == 1
    assert result.drift is not None and not result.drift.drifted
    assert result.drift.drifted_columns == []
    assert result.drift.prediction_drifted is False
    assert result.alerts == []
    assert alerts.list("diabetes") == []


def test_known_shift_is_found_per_feature_and_alerted_once(model: Ridge) -> None:
    x = features()
    rows = x.sample(300, random_state=2, replace=True)
    shifted = ["bmi", "bp", "s5", "s6", "age", "s1"]
    for col in shifted:
        rows[col] = rows[col] + 1.5 * x[col].std()
    serve(rows, model, T0)
    result = checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    assert result.drift is not None and result.drift.drifted
    assert set(result.drift.drifted_columns) - {"prediction"} == set(shifted)
    assert result.drift.prediction_drifted  # bmi and s5 move the answers
    kinds = sorted((r.alert.kind, r.alert.key, r.outcome) for r in result.alerts)
    assert kinds == [("drift", "dataset", "raised"), ("drift", "prediction", "raised")]
    dataset_alert = next(r.alert for r in result.alerts if r.alert.key == "dataset")
    assert set(dataset_alert.payload["features"]) == set(shifted)
    # the same breach again counts the open alert instead of raising a second one
    again = checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    assert {r.outcome for r in again.alerts} == {"deduplicated"}
    assert len(alerts.list("diabetes")) == 2


def test_a_thin_window_gives_no_verdict(model: Ridge) -> None:
    serve(features().head(5), model, T0)
    result = checks.run("diabetes", start_ms=T0, end_ms=T0 + MINUTE)
    assert result.rows == 5 and result.drift is None
    assert "drift needs at least" in result.notes[0]
    assert result.alerts == []


def test_performance_decay_from_delayed_labels(model: Ridge) -> None:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    rows = x.sample(100, random_state=3)
    rids = serve(rows, model, T0)
    # the world changed: the same inputs now have other outcomes
    labels.add("diabetes", list(zip(rids, (y.loc[rows.index] * 1.6).tolist(), strict=True)))
    result = checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    p = result.performance
    assert p is not None and p["metric"] == "mse" and p["n_labelled"] == 100
    assert p["decay"] > 0.1 and p["breached"]
    assert [(r.alert.kind, r.alert.severity) for r in result.alerts] == [
        ("performance", "critical")
    ]
    live = float(mean_squared_error(y.loc[rows.index] * 1.6, model.predict(rows)))
    assert p["versions"][0]["live"] == pytest.approx(live)


def test_history_is_recorded_in_order_and_dry_runs_store_nothing(model: Ridge) -> None:
    x = features()
    serve(x.sample(200, random_state=4, replace=True), model, T0)
    drifted = x.sample(200, random_state=5, replace=True)
    drifted["bmi"] += 2 * x["bmi"].std()
    drifted["s5"] += 2 * x["s5"].std()
    serve(drifted, model, T0 + 20 * MINUTE)
    checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    dry = checks.run(
        "diabetes", start_ms=T0 + 20 * MINUTE, end_ms=T0 + 30 * MINUTE, alerts=False, record=False
    )
    assert dry.drift is not None and set(dry.drift.drifted_columns) >= {"bmi", "s5"}
    assert len(checks.history("diabetes")) == 1 and alerts.list("diabetes") == []
    checks.run("diabetes", start_ms=T0 + 20 * MINUTE, end_ms=T0 + 30 * MINUTE)
    found = checks.history("diabetes")
    assert [h["end_ms"] for h in found] == [T0 + 10 * MINUTE, T0 + 30 * MINUTE]
    psi = Client().get_metric_history(checks.checks_run("diabetes") or "", "psi.bmi")
    assert [m.step for m in psi] == [(T0 + 10 * MINUTE) // 1000, (T0 + 30 * MINUTE) // 1000]
    assert psi[1].value > 0.2 > psi[0].value


def test_errors(model: Ridge) -> None:
    with pytest.raises(NotFound):
        checks.run("ghost")
    with pytest.raises(InvalidInput, match="before it starts"):
        checks.run("diabetes", start_ms=T0, end_ms=T0)
    assert checks.history("diabetes") == []


def test_shadow_answers_are_not_judged(model: Ridge) -> None:
    x = features()
    rows = x.sample(100, random_state=6, replace=True)
    rows["bmi"] += 3 * x["bmi"].std()
    serve(rows, model, T0, variant="shadow")
    result = checks.run("diabetes", start_ms=T0, end_ms=T0 + 10 * MINUTE)
    assert result.rows == 0 and result.drift is None and np.isfinite(result.end_ms)
