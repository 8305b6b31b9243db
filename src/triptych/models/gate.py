"""The evaluation gate: register a candidate only when it beats the champion on the same data.

The reference project's logic, done properly:

* the first model of a name passes (there is nothing to beat);
* a candidate run without the metric is refused with that reason, never a crash;
* the candidate must beat the champion *on the same evaluation data*: the holdouts are compared
  by the digest of the test split each run recorded (``triptych.data.split`` records it); when
  they differ, the champion is re-scored on the candidate's holdout, which the caller passes;
* equal is not better: the improvement must exceed ``min_delta``.

Only a passing candidate is registered and gets the alias. Every decision, with its numbers,
goes into the model's audit trail and onto the candidate run's tags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound
from triptych.store.entities import ModelVersion, Run

if TYPE_CHECKING:
    from triptych.tracking.client import Client

HOLDOUT_NAMES = ("split.test", "test", "holdout")


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided and why, with the numbers it compared."""

    passed: bool
    reason: str
    model_name: str
    metric: str
    direction: str
    candidate: float | None = None
    champion: float | None = None
    champion_version: int | None = None
    rescored: bool = False
    registered: int | None = None  # the new version number when it passed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scorers() -> dict[str, Callable[[Any, Any], float]]:
    from sklearn import metrics

    return {
        "mse": metrics.mean_squared_error,
        "rmse": lambda y, p: float(metrics.mean_squared_error(y, p) ** 0.5),
        "mae": metrics.mean_absolute_error,
        "r2": metrics.r2_score,
        "accuracy": metrics.accuracy_score,
        "f1": lambda y, p: metrics.f1_score(y, p, average="macro"),
    }


def holdout_digest(run: Run) -> str | None:
    """The content digest of the evaluation data a run recorded, if any."""
    for name in HOLDOUT_NAMES:
        for item in run.inputs:
            if item.name == name or item.name.endswith(f".{name}"):
                return item.digest
    return None


def gate(
    run: Any,
    model_name: str,
    *,
    metric: str = "mse",
    direction: str = "minimize",
    min_delta: float = 0.0,
    alias: str = "champion",
    model_path: str = "model",
    holdout: Any = None,
    target: str = "target",
    client: Client | None = None,
) -> GateDecision:
    """Decide whether ``run``'s model (at ``runs:/<run>/<model_path>``) replaces the model
    ``alias`` points at; register it and move the alias only when it does.

    ``holdout`` (a DataFrame with the ``target`` column) is the candidate's evaluation data;
    it is needed only when the champion was evaluated on other data."""
    from triptych.models import registry
    from triptych.tracking import fluent

    if direction not in ("minimize", "maximize"):
        raise InvalidInput(f"direction must be 'minimize' or 'maximize', not {direction!r}")
    c = client or fluent._client()
    run_id = getattr(run, "run_id", run)
    if isinstance(run, fluent.ActiveRun):
        run.flush()
    candidate_run = c.store.get_run(str(run_id))

    def decide(passed: bool, reason: str, **numbers: Any) -> GateDecision:
        registered = None
        if passed:
            version = registry.register(
                f"runs:/{candidate_run.run_id}/{model_path}", model_name, reason=reason, client=c
            )
            registered = version.version
            if c.store.alias_requires_approval(model_name, alias):
                request = registry.request_alias(
                    model_name, alias, version.version, reason=reason, client=c
                )
                reason = f"{reason}; moving {alias} awaits approval (request {request.request_id})"
            else:
                registry.set_alias(
                    model_name, alias, version.version, reason=reason, details=numbers, client=c
                )
        decision = GateDecision(
            passed, reason, model_name, metric, direction, registered=registered, **numbers
        )
        c.store.record_model_event(
            model_name,
            "gate",
            version=registered,
            user=registry._user(),
            reason=reason,
            details={**decision.to_dict(), "run_id": candidate_run.run_id},
        )
        c.log_batch(
            candidate_run.run_id,
            tags={
                f"triptych.gate.{model_name}": "passed" if passed else "refused",
                f"triptych.gate.{model_name}.reason": reason[:1000],
            },
        )
        return decision

    candidate = candidate_run.metrics.get(metric)
    if candidate is None or candidate != candidate:
        return decide(False, f"refused: the candidate run has no {metric!r} metric to compare")
    try:
        champion_version: ModelVersion | None = c.store.get_model_version(model_name, alias=alias)
    except NotFound:
        champion_version = None
    if champion_version is None:
        return decide(
            True, f"first model: no {alias} yet ({metric}={candidate:g})", candidate=candidate
        )

    numbers: dict[str, Any] = {"candidate": candidate, "champion_version": champion_version.version}
    champion_run = c.store.get_run(champion_version.run_id) if champion_version.run_id else None
    champion = champion_run.metrics.get(metric) if champion_run else None
    same_data = (
        champion_run is not None
        and holdout_digest(champion_run) is not None
        and holdout_digest(champion_run) == holdout_digest(candidate_run)
    )
    rescored = False
    if not same_data or champion is None:
        if holdout is None:
            return decide(
                False,
                f"refused: the {alias} (version {champion_version.version}) was evaluated on "
                "other or unrecorded data; pass holdout= (the candidate's test data) "
                "to re-score it",
                **numbers,
            )
        champion = _rescore(c, champion_version, holdout, target, metric, candidate_run)
        rescored = True
    numbers.update(champion=champion, rescored=rescored)
    gain = (champion - candidate) if direction == "minimize" else (candidate - champion)
    where = "re-scored on the candidate's holdout" if rescored else "same holdout"
    if gain > min_delta:
        return decide(
            True,
            f"passed: {metric} {candidate:g} beats {alias} v{champion_version.version} "
            f"{champion:g} by {gain:g} ({where})",
            **numbers,
        )
    return decide(
        False,
        f"refused: {metric} {candidate:g} does not beat {alias} v{champion_version.version} "
        f"{champion:g} by more than {min_delta:g} ({where})",
        **numbers,
    )


def _rescore(
    client: Client, champion: ModelVersion, holdout: Any, target: str, metric: str, run: Run
) -> float:
    from triptych.models.model import load_model
    from triptych.tracking.fingerprint import describe_input

    if not hasattr(holdout, "columns") or target not in holdout.columns:
        raise InvalidInput(f"holdout must be a DataFrame with the target column {target!r}")
    recorded = holdout_digest(run)
    if recorded is not None and describe_input(holdout).digest != recorded:
        raise InvalidInput(
            "the holdout given is not the data the candidate was evaluated on",
            hint="pass the candidate's test split (the one its run recorded)",
        )
    scorers = _scorers()
    if metric not in scorers:
        raise InvalidInput(
            f"cannot re-score {metric!r}", hint=f"re-scorable metrics: {', '.join(scorers)}"
        )
    model = load_model(champion.uri, client=client)
    predictions = model.predict(holdout.drop(columns=[target]))
    return float(scorers[metric](holdout[target], predictions))
