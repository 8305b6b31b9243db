"""What the pipeline tests share: a small pipeline and the helpers to write and inspect it."""

from __future__ import annotations

import textwrap
from pathlib import Path

BASIC = """
import pandas as pd
import triptych
from triptych.pipelines import pipeline, step

@step
def make(n: int = 6) -> pd.DataFrame:
    print("making", n)
    return pd.DataFrame({"x": list(range(n))})

@step(outputs=("low", "high"))
def halves(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    k = len(df) // 2
    return df.iloc[:k], df.iloc[k:]

@step
def total(df: pd.DataFrame, scale: float = 1.0) -> dict:
    value = float(df.x.sum()) * scale
    triptych.log_metric("total", value)
    return {"total": value}

@pipeline
def demo():
    low, high = halves(make())
    total(low)
    total(high)
"""


def write(folder: Path, source: str, name: str = "pipe.py", params: str | None = None) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    if params is not None:
        (folder / "params.yaml").write_text(textwrap.dedent(params))
    return path


def caches(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: s.cache for name, s in result.steps.items()}
