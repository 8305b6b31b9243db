"""Pipelines: ``@step`` and ``@pipeline``, cached and resumable, on one machine or on Ray.

    from triptych.pipelines import pipeline, step

    @step
    def load() -> pd.DataFrame: ...

    @step
    def train(data: pd.DataFrame, alpha: float = 1.0) -> Ridge: ...

    @pipeline
    def training():
        train(load())

    training.run()          # or: triptych pipeline run file.py

See docs/pipelines.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from triptych.pipelines.pipeline import Pipeline, load, pipeline
from triptych.pipelines.step import Output, Step, step

if TYPE_CHECKING:
    from triptych.pipelines.runner import PipelineResult, run

__all__ = ["Output", "Pipeline", "PipelineResult", "Step", "load", "pipeline", "run", "step"]


def __getattr__(name: str) -> Any:
    if name in ("run", "PipelineResult"):
        from triptych.pipelines import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'triptych.pipelines' has no attribute {name!r}")
