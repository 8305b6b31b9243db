"""Drift in production, and the closed loop that answers it.

    triptych pipeline run examples/diabetes/pipeline.py          # diabetes v1 = champion
    triptych deploy create diabetes --model models:/diabetes@champion
    triptych monitor create diabetes --window 1h
    triptych monitor policy diabetes --pipeline examples/diabetes/pipeline.py \\
        -p validate.psi_threshold=5 --min-labels 50
    triptych serve --deployment diabetes --port 8080 &
    python examples/diabetes/simulate_drift.py --url http://127.0.0.1:8080

The story: the clinic gets a new device that reads ``bmi``, ``bp`` and ``s5`` higher than the
old one (``--shift`` standard deviations); the patients are the same, so their outcomes are
not. The script sends ordinary traffic, then drifted traffic, to the running deployment, and
sends the outcomes (delayed labels) for both. After each phase it runs one tick of the loop:
first nothing fires; after the drift the monitor sees the inputs move and the live MSE decay,
the loop retrains on the reference data plus the labelled live rows, the gate promotes the new
model, the server follows the alias; after more traffic the loop judges the new champion on
the same labelled rows as the old one and keeps it. ``triptych monitor status diabetes`` and
``triptych monitor report diabetes --html report.html`` show all of it.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes

SHIFTED = ("bmi", "bp", "s5")


def world(n: int, *, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` patients like the diabetes data (resampled) and their outcomes (with a little
    noise); with ``shift``, the new device's readings of bmi, bp and s5."""
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


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from triptych.monitoring import loop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the running server")
    parser.add_argument("--deployment", default="diabetes")
    parser.add_argument("--rows", type=int, default=200, help="patients per phase")
    parser.add_argument("--shift", type=float, default=1.5, help="device offset, in stds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the decisions as JSON")
    args = parser.parse_args(argv)
    decisions = []

    def tick(title: str) -> loop.Decision:
        decision = loop.tick(args.deployment)
        decisions.append(decision.to_dict())
        if not args.json:
            print(f"{title}: {decision.action} — {decision.reason}")
        return decision

    phase(args.url, args.deployment, *world(args.rows, seed=args.seed))
    tick("ordinary traffic")
    phase(args.url, args.deployment, *world(args.rows, seed=args.seed + 1, shift=args.shift))
    retrain = tick("drifted traffic")
    after = retrain.details.get("champion_after")
    if retrain.action == "retrain" and after != retrain.details.get("champion_before"):
        wait_version(args.url, int(after))
        phase(args.url, args.deployment, *world(args.rows, seed=args.seed + 2, shift=args.shift))
        tick("the new champion, live")
    if args.json:
        print(json.dumps(decisions, default=str))
    return decisions


if __name__ == "__main__":
    main()
