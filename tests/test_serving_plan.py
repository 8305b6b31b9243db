"""Serving plans: checked on creation; the canary split is decided by the request id."""

from __future__ import annotations

import pytest

from triptych.errors import InvalidInput
from triptych.serving.ids import new_request_id
from triptych.serving.plan import ServingPlan, deployment_name, goes_to_canary


def test_the_split_is_deterministic_per_request_and_follows_the_weight() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    for weight in (0, 1, 10, 50, 100):
        chosen = [goes_to_canary(i, weight) for i in ids]
        assert chosen == [goes_to_canary(i, weight) for i in ids]
        assert abs(sum(chosen) / len(ids) - weight / 100) < 0.015
    # a bigger weight only adds requests to the canary: none leaves it
    assert all(goes_to_canary(i, 30) for i in ids if goes_to_canary(i, 10))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"primary": ""},
        {"primary": "models:/m/1", "canary_weight": 101},
        {"primary": "models:/m/1", "canary_weight": -1},
        {"primary": "models:/m/1", "canary_weight": True},
        {"primary": "models:/m/1", "canary_weight": 10},  # a weight without a canary
    ],
)
def test_invalid_plans_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        ServingPlan(**kwargs)  # type: ignore[arg-type]


def test_deployment_targets() -> None:
    assert deployment_name("deployments:/prod") == "prod"
    assert deployment_name("models:/m@champion") is None
    with pytest.raises(InvalidInput):
        deployment_name("deployments:/")
