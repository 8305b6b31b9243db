"""Deterministic train/test splits whose row assignment is recorded.

``split(data, test_size=0.2, seed=0)`` gives the same rows as scikit-learn's
``train_test_split(..., test_size=0.2, random_state=0)`` (it calls it on row positions), and
returns the assignment too: inside an active run it is logged as the artifact
``splits/<name>.json`` with the parameters and the digests of both parts, so a run can say
exactly which rows it trained and tested on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from triptych.errors import InvalidInput


@dataclass(frozen=True)
class Split:
    """The two parts, the row positions of each, and a digest of the assignment."""

    train: Any
    test: Any
    train_rows: list[int]
    test_rows: list[int]
    digest: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "digest": self.digest,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
        }


def split(
    data: Any,
    test_size: float = 0.2,
    seed: int = 0,
    stratify: str | None = None,
    *,
    name: str = "split",
    log: bool = True,
) -> Split:
    """Split a DataFrame by rows. ``stratify`` names a column whose class shares are kept.

    When a run is active and ``log`` is true, records the assignment (artifact
    ``splits/<name>.json``), the split parameters, and both parts as data inputs."""
    from sklearn.model_selection import train_test_split

    if not hasattr(data, "iloc"):
        raise InvalidInput(f"split takes a pandas DataFrame, got {type(data).__name__}")
    if not 0 < test_size < 1:
        raise InvalidInput(f"test_size must be between 0 and 1, got {test_size}")
    labels = None
    if stratify is not None:
        if stratify not in data.columns:
            raise InvalidInput(f"no column {stratify!r} to stratify on")
        labels = data[stratify].to_numpy()
    positions = list(range(len(data)))
    try:
        train_rows, test_rows = train_test_split(
            positions, test_size=test_size, random_state=seed, stratify=labels
        )
    except ValueError as e:
        raise InvalidInput(f"cannot split: {e}") from e
    params = {"test_size": test_size, "seed": seed, "stratify": stratify, "rows": len(data)}
    assignment = json.dumps({"train": train_rows, "test": test_rows}, separators=(",", ":"))
    result = Split(
        train=data.iloc[train_rows],
        test=data.iloc[test_rows],
        train_rows=[int(r) for r in train_rows],
        test_rows=[int(r) for r in test_rows],
        digest=hashlib.sha256(assignment.encode()).hexdigest(),
        params=params,
    )
    if log:
        _record(result, name)
    return result


def _record(result: Split, name: str) -> None:
    from triptych.tracking import fluent

    run = fluent.active_run()
    if run is None:
        return
    run.log_dict(result.to_dict(), f"splits/{name}.json")
    run.set_tags({f"triptych.split.{name}.digest": result.digest})
    run.log_params({f"{name}.{k}": v for k, v in result.params.items()})
    run.log_input(result.train, name=f"{name}.train")
    run.log_input(result.test, name=f"{name}.test")
