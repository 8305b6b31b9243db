"""Tracking of a search: each trial a nested run, and the leaderboard as a table.

A trial run is written in two store calls when the trial ends — ``create_run`` with its
params and tags (and the parent's fingerprint), then ``finish_run`` with its metrics and
status in one transaction — so recording costs the same whether the trial ran here, in a
worker process or on Ray.

    params   estimator, expansion, and the estimator's parameters (``ridge.alpha`` …)
    metrics  fold_0 … fold_k (the fold scores), cv_mean and cv_std (complete trials), duration
    tags     triptych.automl.{study, trial, state, estimator, preprocessing, worker, error, stopped}
    status   FINISHED (complete or pruned) or FAILED
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from triptych.automl import space
from triptych.automl.search import ATTR, Finished
from triptych.store.entities import Metric, RunSpec, RunStatus

TAG = "triptych.automl"
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
COLUMNS = (
    "number",
    "estimator",
    "preprocessing",
    "params",
    "cv_mean",
    "cv_std",
    "folds",
    "duration",
    "state",
    "complexity",
    "weight",
    "run_id",
    "error",
)


class TrialRecorder:
    """Records finished trials as children of the search's run."""

    def __init__(self, client: Any, parent_run_id: str, study_name: str, ctx: space.Context):
        from triptych.tracking.client import _user

        self.client = client
        self.parent = client.get_run(parent_run_id)
        self.study_name = study_name
        self.ctx = ctx
        self.user = _user()
        self.run_ids: dict[int, str] = {}

    def __call__(self, finished: Finished) -> str:
        outcome = finished.outcome
        params = finished.params
        fp = self.parent.fingerprint
        tags = {
            f"{TAG}.study": self.study_name,
            f"{TAG}.trial": str(finished.number),
            f"{TAG}.state": outcome.state,
            f"{TAG}.estimator": str(params.get("estimator")),
            f"{TAG}.preprocessing": space.preprocessing(params, self.ctx),
        }
        if outcome.error:
            tags[f"{TAG}.error"] = outcome.error[:2000]
        if outcome.stopped:
            tags[f"{TAG}.stopped"] = outcome.stopped
        if outcome.duplicate_of is not None:
            tags[f"{TAG}.duplicate_of"] = str(outcome.duplicate_of)
        store = self.client.store
        run = store.create_run(
            RunSpec(
                experiment_id=self.parent.experiment_id,
                name=f"trial-{finished.number}",
                parent_run_id=self.parent.run_id,
                user=self.user,
                start_time=finished.start_ms,
                tags=tags,
                params={k: _text(v) for k, v in params.items()},
                code=fp.code if fp else None,
                env_digest=fp.env_digest if fp else None,
                fingerprint=fp.digest if fp else None,
                heartbeat_timeout=self.client.settings.heartbeat_timeout,
            )
        )
        t = finished.end_ms
        metrics = [Metric(f"fold_{i}", s, 0, t) for i, s in enumerate(outcome.fold_scores)]
        if outcome.state == "complete":
            metrics += [
                Metric("cv_mean", outcome.cv_mean, 0, t),
                Metric("cv_std", outcome.cv_std, 0, t),
            ]
        metrics.append(Metric("duration", round(outcome.duration, 4), 0, t))
        status = RunStatus.FAILED if outcome.state == "failed" else RunStatus.FINISHED
        store.finish_run(run.run_id, status, end_time=t, metrics=metrics)
        self.run_ids[finished.number] = run.run_id
        return str(run.run_id)


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def trial_run_ids(client: Any, experiment_id: str, study_name: str) -> dict[int, str]:
    """Trial number → run id of every recorded trial of the study (all sessions)."""
    found: dict[int, str] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`{TAG}.study` = '{study_name}'",
            max_results=1000,
            page_token=token,
        )
        for run in page.items:
            number = run.tags.get(f"{TAG}.trial")
            if number is not None and number.isdigit():
                found.setdefault(int(number), run.run_id)
        token = page.next_page_token
        if not token:
            return found


def leaderboard(
    trials: Sequence[Any],
    ctx: space.Context,
    direction: str,
    member_weights: Mapping[int, float] | None = None,
    run_ids: Mapping[int, str] | None = None,
) -> Any:
    """One row per trial, best first: complete trials by CV mean, then pruned, then failed."""
    import pandas as pd

    rows = []
    for t in trials:
        if t.state.name == "WAITING":  # enqueued, never started: not a trial yet
            continue
        state = STATES.get(t.state.name, t.state.name.lower())
        info = t.user_attrs.get(ATTR) or {}
        scores = [float(s) for s in info.get("fold_scores", [])]
        complete = state == "complete" and t.value is not None
        duration = info.get("duration")
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            {
                "number": t.number,
                "estimator": t.params.get("estimator"),
                "preprocessing": space.preprocessing(t.params, ctx),
                "params": space.estimator_params(t.params),
                "cv_mean": float(t.value) if complete else math.nan,
                "cv_std": _std(scores) if complete else math.nan,
                "folds": len(scores),
                "duration": float(duration) if duration is not None else math.nan,
                "state": state,
                "complexity": space.complexity(t.params),
                "weight": (member_weights or {}).get(t.number, 0.0),
                "run_id": (run_ids or {}).get(t.number),
                "error": info.get("error"),
            }
        )
    order = {"complete": 0, "pruned": 1, "failed": 2}
    sign = 1.0 if direction == "minimize" else -1.0
    rows.sort(
        key=lambda r: (
            order.get(r["state"], 3),
            sign * r["cv_mean"] if r["state"] == "complete" else 0.0,
            r["number"],
        )
    )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _std(scores: Sequence[float]) -> float:
    from triptych.automl.search import cv_std

    return cv_std(scores)


def leaderboard_files(board: Any) -> tuple[str, str]:
    """``(csv, json)`` texts of a leaderboard (params as JSON objects)."""
    records = []
    for row in board.to_dict(orient="records"):
        records.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    flat = board.copy()
    flat["params"] = [json.dumps(p, sort_keys=True) for p in board["params"]]
    return flat.to_csv(index=False), json.dumps(records, indent=2, default=str)
