"""Delayed labels and live performance, on real logged predictions (a serving run and its
PredictionLog, as the server writes them) and the real default stores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.linear_model import LogisticRegression, Ridge

import triptych
from triptych.errors import InvalidInput, NotFound
from triptych.models import registry
from triptych.monitoring import labels, performance
from triptych.serving import ids, predlog
from triptych.serving.predlog import Prediction, PredictionLog
from triptych.store.entities import RunSpec
from triptych.tracking.client import Client

HOUR = 3_600_000
T0 = 1_790_000_000_000 // HOUR * HOUR  # an hour boundary (2026-09-20 UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Client:
    if request.param == "sqlite":
        return Client()
    return Client(request.getfixturevalue("postgres_url"), str(tmp_path / "artifacts"))


def log_predictions(client: Client, predictions: list[Prediction]) -> str:
    """Write ``predictions`` through a PredictionLog into a serving run, as a server does."""
    experiment = client.store.get_or_create_experiment(predlog.SERVING_EXPERIMENT)
    run = client.store.create_run(
        RunSpec(
            experiment.experiment_id,
            name="serve diabetes",
            start_time=min(p.time_ms for p in predictions) - 1000,
            tags={predlog.TARGET_TAG: "diabetes", predlog.PID_TAG: "1"},
            heartbeat_timeout=10**6,
        )
    )
    log = PredictionLog(client, run.run_id, flush_seconds=3600)
    for p in predictions:
        log.record(p)
    log.close()
    assert log.written == len(predictions) and log.dropped == 0
    return run.run_id


def pred(time_ms: int, output: object, **kw: object) -> Prediction:
    fields: dict[str, object] = {
        "request_id": ids.new_request_id(time_ms),
        "time_ms": time_ms,
        "deployment": "diabetes",
        "variant": "primary",
        "model_name": "diabetes",
        "model_version": 1,
        "model_uri": "runs:/" + "a" * 32 + "/model",
        "inputs": [{"age": 0.05}],
        "outputs": [output],
        "latency_ms": 0.5,
        "status": 200,
    }
    fields.update(kw)
    return Prediction(**fields)  # type: ignore[arg-type]


def label_files(client: Client) -> list[str]:
    run_id = labels.labels_run("diabetes", client=client)
    if run_id is None:
        return []
    return [e.path for e in client.store.walk_artifacts(run_id, labels.PREFIX)]


# -- adding and joining -------------------------------------------------------------------------
def test_join_with_missing_duplicate_and_unknown_request_ids(client: Client) -> None:
    served = [pred(T0 + i * 1000, 100.0 + i) for i in range(6)]
    shadow = pred(T0 + 500, 1.0, variant="shadow")
    other = pred(T0 + 700, 2.0, deployment="other")
    log_predictions(client, [*served, shadow, other])
    unknown = ids.new_request_id(T0 + 2000)  # labelled before its prediction is flushed
    given = [
        (served[0].request_id, 110.0),
        (served[1].request_id, 111.0),
        (served[1].request_id, 121.0),  # duplicate in the file: the last one wins
        (served[2].request_id, 112.0),
        (shadow.request_id, 5.0),  # a shadow answer is not a served prediction
        (other.request_id, 6.0),  # another deployment's prediction
        (unknown, 7.0),
    ]
    report = labels.add("diabetes", given, client=client)
    assert (report.received, report.new, report.stored) == (7, 6, 6)
    assert report.duplicates == 1 and report.duplicate_ids == [served[1].request_id]
    assert report.unmatched == 3
    assert set(report.unmatched_ids) == {shadow.request_id, other.request_id, unknown}
    assert report.corrections == report.unchanged == report.invalid_count == 0

    joined = labels.join("diabetes", client=client)
    assert list(joined["request_id"]) == [p.request_id for p in served[:3]]
    assert list(joined["label"]) == [110.0, 121.0, 112.0]
    assert list(joined["prediction"]) == [100.0, 101.0, 102.0]
    assert list(joined["model_version"]) == [1, 1, 1]
    assert list(joined["variant"]) == ["primary"] * 3
    assert list(joined["time_ms"]) == [p.time_ms for p in served[:3]]
    assert joined.attrs["unlabelled"] == 3  # served[3:], never labelled

    # The unknown id is kept: once its prediction is logged, it joins.
    late = pred(ids.time_of(unknown), 8.0, request_id=unknown)
    log_predictions(client, [late])
    assert unknown in set(labels.join("diabetes", client=client)["request_id"])

    # Labels are volume data: Parquet artifacts of the deployment's labels run.
    run = client.get_run(report.run_id or "")
    assert run.tags[labels.LABELS_TAG] == "diabetes"
    assert client.store.get_experiment(run.experiment_id).name == "monitoring"
    assert label_files(client) == [report.file]


def test_reupload_adds_nothing_and_a_changed_label_is_a_correction(client: Client) -> None:
    served = [pred(T0 + i * 1000, float(i)) for i in range(3)]
    log_predictions(client, served)
    first = [(p.request_id, float(i) + 0.5) for i, p in enumerate(served)]
    assert labels.add("diabetes", first, client=client).stored == 3

    again = labels.add("diabetes", first, client=client)
    assert (again.stored, again.unchanged, again.new, again.file) == (0, 3, 0, None)
    assert len(label_files(client)) == 1  # no new file at all

    changed = [first[0], (served[1].request_id, 9.0)]
    fixed = labels.add("diabetes", changed, client=client)
    assert (fixed.corrections, fixed.unchanged, fixed.stored) == (1, 1, 1)
    assert list(labels.join("diabetes", client=client)["label"]) == [0.5, 9.0, 2.5]
    history = labels.read("diabetes", history=True, client=client)
    assert list(history.loc[history["request_id"] == served[1].request_id, "label"]) == [1.5, 9.0]
    # Changing it back is a correction too, and it wins again.
    assert labels.add("diabetes", [first[1]], client=client).corrections == 1
    assert list(labels.join("diabetes", client=client)["label"]) == [0.5, 1.5, 2.5]


def test_labels_from_csv_and_parquet_with_pasted_ids(tmp_path: Path) -> None:
    client = Client()
    served = [pred(T0 + i * 1000, float(i)) for i in range(4)]
    log_predictions(client, served)
    pasted = [str(uuid.UUID(p.request_id)).upper() for p in served]  # dashes and capitals
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": pasted[:2], "label": [1.0, 2.0], "note": ["x", "y"]}).to_csv(
        csv, index=False
    )
    parquet = tmp_path / "labels.parquet"
    pd.DataFrame({"request_id": pasted[2:], "label": [3.0, 4.0]}).to_parquet(parquet)
    assert labels.add("diabetes", csv, client=client).new == 2
    assert labels.add("diabetes", str(parquet), client=client).new == 2
    joined = labels.join("diabetes", client=client)
    assert list(joined["label"]) == [1.0, 2.0, 3.0, 4.0]
    assert list(joined["request_id"]) == [p.request_id for p in served]


def test_a_batch_request_takes_a_list_of_labels() -> None:
    client = Client()
    batch = pred(T0, 1.0, outputs=[1.0, 2.0, 3.0], inputs=[{"a": 1}, {"a": 2}, {"a": 3}])
    odd = pred(T0 + 1, 1.0, outputs=[1.0, 2.0], inputs=[{"a": 1}, {"a": 2}])
    log_predictions(client, [batch, odd])
    labels.add(
        "diabetes", [(batch.request_id, [1.5, 2.5, 3.5]), (odd.request_id, 4.0)], client=client
    )
    joined = labels.join("diabetes", client=client)
    assert list(joined["row"]) == [0, 1, 2]
    assert list(joined["prediction"]) == [1.0, 2.0, 3.0]
    assert list(joined["label"]) == [1.5, 2.5, 3.5]
    assert joined.attrs["mismatched"] == 1  # two rows, one label: cannot be paired


# -- bad input: a clear error, nothing written -------------------------------------------------
def test_wrong_columns_are_refused_with_the_fix(tmp_path: Path) -> None:
    client = Client()
    with pytest.raises(InvalidInput, match="columns request_id and label; missing label") as e:
        labels.add("diabetes", pd.DataFrame({"request_id": [ids.new_request_id()], "y": [1]}))
    assert "rename" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match="missing request_id, label"):
        labels.add("diabetes", pd.DataFrame({"id": [1]}), client=client)
    (tmp_path / "l.json").write_text("{}")
    with pytest.raises(InvalidInput, match="cannot read labels"):
        labels.add("diabetes", tmp_path / "l.json", client=client)
    with pytest.raises(NotFound):
        labels.add("diabetes", tmp_path / "missing.csv", client=client)
    with pytest.raises(InvalidInput, match="pairs"):
        labels.add("diabetes", [("only-one",)], client=client)
    assert labels.labels_run("diabetes", client=client) is None  # no run, no file


def test_bad_ids_and_missing_labels_refuse_the_upload(client: Client) -> None:
    good = pred(T0, 1.0)
    log_predictions(client, [good])
    rows = pd.DataFrame(
        {
            "request_id": [good.request_id, "nope", uuid.uuid4().hex, ids.new_request_id(T0)],
            "label": [1.0, 2.0, 3.0, np.nan],
        }
    )
    with pytest.raises(
        InvalidInput, match="3 of 4 label rows are invalid, nothing was stored"
    ) as e:
        labels.add("diabetes", rows, client=client)
    assert "row 2: 'nope' is not a request id" in str(e.value)
    assert "row 4" in str(e.value) and "has no label" in str(e.value)
    assert "skip_invalid" in (e.value.hint or "")
    assert label_files(client) == []

    # Asked to, the good rows are stored and the bad ones reported, not silently dropped.
    report = labels.add("diabetes", rows, skip_invalid=True, client=client)
    assert (report.stored, report.invalid_count) == (1, 3)
    assert [r for r, _ in report.invalid] == [2, 3, 4]
    assert list(labels.read("diabetes", client=client)["request_id"]) == [good.request_id]


# -- performance over time --------------------------------------------------------------------
def register_version(kind: str, score_key: str, score: float) -> int:
    """A real registered version whose run logged ``score_key`` (the offline score)."""
    x = pd.DataFrame({"age": [0.0, 1.0, 2.0, 3.0]})
    y = [0, 1, 0, 1]
    model = Ridge().fit(x, y) if kind == "regression" else LogisticRegression().fit(x, y)
    with triptych.start_run("train"):
        triptych.log_metric(score_key, score)
        logged = triptych.log_model(model, "model", input_example=x.head(2))
    return registry.register(logged.uri, "diabetes").version


def test_regression_metrics_per_window_and_version_equal_sklearn() -> None:
    client = Client()
    v1 = register_version("regression", "mse", 4.0)
    v2 = register_version("regression", "test_mse", 2.0)
    rng = np.random.default_rng(0)
    served = []
    for i in range(60):
        when = T0 + i * 120_000  # two hours
        version, variant = (v2, "canary") if i % 3 == 0 else (v1, "primary")
        served.append(
            pred(when, float(rng.normal(150, 30)), model_version=version, variant=variant)
        )
    log_predictions(client, served)
    truth = {p.request_id: p.outputs[0] + float(rng.normal(0, 3)) for p in served}
    labels.add("diabetes", list(truth.items())[:50], client=client)  # the last 10 unlabelled

    perf = performance.over_time("diabetes", window="1h", client=client)
    assert perf.task == "regression"
    frame = perf.frame
    assert [t.value // 10**6 for t in frame["window_start"]] == [T0, T0, T0 + HOUR, T0 + HOUR]
    assert list(frame["model_version"]) == [v1, v2, v1, v2]
    assert frame["n_labelled"].sum() == 50
    for row in frame.itertuples():
        start = row.window_start.value // 10**6
        rows = [
            p
            for p in served[:50]
            if start <= p.time_ms < start + HOUR and p.model_version == row.model_version
        ]
        y_true = [truth[p.request_id] for p in rows]
        y_pred = [p.outputs[0] for p in rows]
        assert row.n_labelled == len(rows)
        assert row.mse == pytest.approx(metrics.mean_squared_error(y_true, y_pred))
        assert row.mae == pytest.approx(metrics.mean_absolute_error(y_true, y_pred))
        assert row.r2 == pytest.approx(metrics.r2_score(y_true, y_pred))
        offline = 4.0 if row.model_version == v1 else 2.0
        assert row.offline_score == offline
        assert row.offline_metric == ("mse" if row.model_version == v1 else "test_mse")
        assert row.decay == pytest.approx((row.mse - offline) / offline)
    assert set(frame.loc[frame["model_version"] == v2, "variants"]) == {"canary"}

    # A window of a day puts everything in one window per version.
    daily = performance.over_time("diabetes", window="1d", client=client).frame
    assert list(daily["n_labelled"]) == [
        sum(1 for p in served[:50] if p.model_version == v) for v in (v1, v2)
    ]
    assert perf.to_dict()["windows"][0]["window_start"] == T0


def test_classification_metrics_with_and_without_probabilities() -> None:
    client = Client()
    version = register_version("classification", "accuracy", 0.9)
    rng = np.random.default_rng(1)
    with_probs, plain = [], []
    for i in range(40):
        p1 = float(rng.uniform())
        cls = int(p1 > 0.5)
        with_probs.append(
            pred(
                T0 + i * 1000,
                {"label": cls, "probabilities": {"0": 1 - p1, "1": p1}},
                model_version=version,
            )
        )
        plain.append(pred(T0 + i * 1000, cls, model_version=version, deployment="plain"))
    log_predictions(client, with_probs + plain)
    truth = [int(rng.uniform() < (0.8 if p.outputs[0]["label"] else 0.2)) for p in with_probs]
    labels.add(
        "diabetes",
        [(p.request_id, t) for p, t in zip(with_probs, truth, strict=True)],
        client=client,
    )
    labels.add(
        "plain", [(p.request_id, t) for p, t in zip(plain, truth, strict=True)], client=client
    )

    perf = performance.over_time("diabetes", client=client)
    assert perf.task == "classification"
    (row,) = perf.frame.itertuples()
    predicted = [p.outputs[0]["label"] for p in with_probs]
    scores = [p.outputs[0]["probabilities"]["1"] for p in with_probs]
    assert row.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted))
    assert row.f1 == pytest.approx(metrics.f1_score(truth, predicted))
    assert row.roc_auc == pytest.approx(metrics.roc_auc_score(truth, scores))
    assert row.offline_score == 0.9
    assert row.decay == pytest.approx((0.9 - row.accuracy) / 0.9)
    assert perf.notes == []

    plain_perf = performance.over_time("plain", client=client)
    (row,) = plain_perf.frame.itertuples()
    assert row.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted))
    assert pd.isna(row.roc_auc)
    assert any("roc_auc skipped" in n and "probabilities" in n for n in plain_perf.notes)

    # A given task is used as given: integer classes can be scored as a regression.
    assert performance.over_time("plain", task="regression", client=client).task == "regression"


def test_bad_window_and_task_are_refused() -> None:
    for bad in ("", "1", "0h", "1y", "-1h"):
        with pytest.raises(InvalidInput, match="invalid window"):
            performance.over_time("diabetes", window=bad)
    with pytest.raises(InvalidInput, match="unknown task"):
        performance.over_time("diabetes", task="ranking")
    assert performance.parse_window("30m") == 1_800_000


def test_no_labels_gives_an_empty_table() -> None:
    perf = performance.over_time("nothing-here")
    assert perf.frame.empty and perf.task == "regression"


def test_empty_and_infinite_labels_are_missing_and_the_report_is_json() -> None:
    client = Client()
    served = [pred(T0 + i, 1.0) for i in range(3)]
    log_predictions(client, served)
    rows = pd.DataFrame(
        {"request_id": [p.request_id for p in served], "label": ["  ", float("inf"), "yes"]}
    )
    report = labels.add("diabetes", rows, skip_invalid=True, client=client)
    assert [r for r, _ in report.invalid] == [1, 2]
    assert all("has no label" in why for _, why in report.invalid)
    assert json.loads(json.dumps(report.to_dict()))["stored"] == 1
    assert list(labels.read("diabetes", client=client)["label"]) == ["yes"]


def test_the_monitor_labels_and_performance_commands(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from triptych.cli.main import app

    client = Client()
    served = [pred(T0 + i * 1000, float(i)) for i in range(3)]
    log_predictions(client, served)
    csv = tmp_path / "labels.csv"
    pd.DataFrame(
        {"request_id": [p.request_id for p in served] + ["nope"], "label": [0.5, 1.0, 2.5, 1.0]}
    ).to_csv(csv, index=False)
    runner = CliRunner()

    refused = runner.invoke(app, ["monitor", "labels", "deployments:/diabetes", str(csv)])
    assert refused.exit_code != 0 and label_files(client) == []  # a bad id: nothing written
    done = runner.invoke(
        app, ["monitor", "labels", "diabetes", str(csv), "--skip-invalid", "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["new"] == 3 and report["invalid_count"] == 1

    shown = runner.invoke(app, ["monitor", "performance", "diabetes", "--window", "1d", "--json"])
    assert shown.exit_code == 0, shown.output
    windows = json.loads(shown.output)["windows"]
    assert sum(w["n_labelled"] for w in windows) == 3
    assert windows[0]["mae"] == pytest.approx(1 / 3)  # mean of |0-0.5|, |1-1|, |2-2.5|
    table = runner.invoke(app, ["monitor", "performance", "diabetes", "--window", "1d"])
    assert table.exit_code == 0 and "regression" in table.output
