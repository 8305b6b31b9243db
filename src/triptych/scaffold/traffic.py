"""Simulated clinic traffic for the diabetes example: patients, a drifting device, outcomes.

Used by ``examples/diabetes/simulate_drift.py`` and ``triptych quickstart`` to send traffic to
a running deployment and the delayed labels after it. The story: a new device reads ``bmi``,
``bp`` and ``s5`` higher (``shift`` standard deviations); the patients, and so their outcomes,
are the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SHIFTED = ("bmi", "bp", "s5")


def world(n: int, *, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` patients like the diabetes data (resampled) and their outcomes (with a little
    noise); with ``shift``, the new device's readings of bmi, bp and s5."""
    import numpy as np
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), n)
    rows = x.iloc[pick].reset_index(drop=True)
    outcome = y.iloc[pick].reset_index(drop=True) + rng.normal(0.0, 5.0, n)
    for col in SHIFTED:
        rows[col] = rows[col] + shift * x[col].std()
    return rows, outcome


def send(url: str, rows: pd.DataFrame, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """One request per patient (as a clinic's app would call); returns the answers."""
    import httpx

    answers = []
    with httpx.Client(base_url=url, timeout=timeout) as http:
        for record in rows.to_dict("records"):
            r = http.post("/predict", json={"records": [record]})
            r.raise_for_status()
            answers.append(r.json())
    return answers


def label(deployment: str, answers: list[dict[str, Any]], outcome: pd.Series) -> int:
    """Send the outcomes, matched by request id, as delayed labels."""
    from triptych.monitoring import labels

    pairs = [(a["request_id"], float(v)) for a, v in zip(answers, outcome, strict=True)]
    return labels.add(deployment, pairs).new


def wait_logged(deployment: str, answers: list[dict[str, Any]], timeout: float = 60.0) -> None:
    """Wait until the server has written these answers to its prediction log (it flushes
    every couple of seconds, off the response path)."""
    from triptych.monitoring import checks
    from triptych.serving import ids

    wanted = {a["request_id"] for a in answers}
    start = min(ids.time_of(a["request_id"]) for a in answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = checks.current_frame(deployment, start, int(time.time() * 1000) + 1)
        if wanted <= set(found["request_id"]):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the server did not log {len(wanted)} answers within {timeout:.0f} s")


def wait_version(url: str, version: int, timeout: float = 60.0) -> None:
    """Wait until the server answers with model ``version`` (it polls the alias)."""
    import httpx

    x, _ = world(1, seed=0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.post(f"{url}/predict", json={"records": x.to_dict("records")}).json()
        if answer.get("model", {}).get("version") == version:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the server did not switch to version {version} in {timeout:.0f} s")


def phase(url: str, deployment: str, rows: pd.DataFrame, outcome: pd.Series) -> None:
    answers = send(url, rows)
    wait_logged(deployment, answers)
    label(deployment, answers, outcome)


__all__ = ["SHIFTED", "label", "phase", "send", "wait_logged", "wait_version", "world"]
