"""Helpers for the scoring-server tests: real models in a real store, real uvicorn servers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triptych.testing import process, reset_process_state
from triptych.testing.process import clean_env, free_port
from triptych.tracking.client import Client


def client(home: Path) -> Client:
    return Client(f"sqlite:///{home}/triptych.db", str(home / "artifacts"))


@dataclass
class Models:
    home: Path
    columns: list[str]
    rows: Any  # a DataFrame of held-out diabetes rows
    ridge: Any  # version 1 of "diabetes": Ridge fitted on a DataFrame
    pipeline: Any  # version 2: StandardScaler + Ridge(alpha=3)
    v3: Any  # version 3: Ridge(alpha=10), e.g. a shadow
    cities: Any  # "cities" version 1: one-hot on a string column (fails on unknown cities)
    lenient: Any  # "cities" version 2: the same, ignoring unknown cities


def make_models(home: Path) -> Models:
    """Train and register the test models in the store under ``home``."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import triptych
    from triptych.models import registry

    home.mkdir(parents=True, exist_ok=True)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    train, test = X.iloc[:400], X.iloc[400:]
    ridge = Ridge(alpha=1.0).fit(train, y.iloc[:400])
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(train, y.iloc[:400])
    v3 = Ridge(alpha=10.0).fit(train, y.iloc[:400])
    frame = pd.DataFrame(
        {"city": ["paris", "rome", "oslo", "rome"] * 10, "size": [1.0, 2.0, 3.0, 4.0] * 10}
    )
    cities = make_pipeline(
        ColumnTransformer(
            [("city", OneHotEncoder(handle_unknown="error"), ["city"])], remainder="passthrough"
        ),
        Ridge(),
    ).fit(frame, [1.0, 2.0, 3.0, 4.0] * 10)
    lenient = make_pipeline(
        ColumnTransformer(
            [("city", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough"
        ),
        Ridge(),
    ).fit(frame, [1.0, 2.0, 3.0, 4.0] * 10)

    c = client(home)
    triptych.set_tracking_uri(c.settings.tracking_uri, c.settings.artifact_uri)
    try:
        for estimator in (ridge, pipeline, v3):
            with triptych.start_run(experiment="training") as run:
                run.log_input(train, name="diabetes-train")
                logged = triptych.log_model(estimator, "model", input_example=train.head(5))
            registry.register(logged.uri, "diabetes", client=c)
        for estimator in (cities, lenient):
            with triptych.start_run(experiment="training"):
                logged = triptych.log_model(estimator, "model", input_example=frame.head(4))
            registry.register(logged.uri, "cities", client=c)
        registry.set_alias("diabetes", "champion", 1, client=c)
    finally:
        reset_process_state()
    return Models(home, list(X.columns), test, ridge, pipeline, v3, cities, lenient)


def env(home: Path) -> dict[str, str]:
    return clean_env(home)


def wait_ready(url: str) -> None:
    """Until the scoring server at ``url`` says it is ready."""
    process.wait_ready(f"{url}/ready")


class ServerProcess(process.ServerProcess):
    """``python -m triptych serve TARGET ARGS`` in a subprocess, stopped with SIGINT."""

    def __init__(self, home: Path, target: str, *args: str) -> None:
        super().__init__(
            ["-m", "triptych", "serve", target, *args], cwd=home, env=env(home), ready="/ready"
        )


class ServerThread:
    """A uvicorn.Server running ``app`` in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_ready(self.url)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def records(frame: Any) -> list[dict[str, Any]]:
    return [dict(zip(frame.columns, map(float, row), strict=True)) for row in frame.to_numpy()]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
