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
from typing import Any

from triptych.scaffold.traffic import label, phase, send, wait_logged, wait_version, world

__all__ = ["label", "main", "phase", "send", "wait_logged", "wait_version", "world"]


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
