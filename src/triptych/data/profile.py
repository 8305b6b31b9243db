"""Column profiles of tabular data, JSON-ready, and sparklines to show their histograms.

:func:`profile` summarises each column of a pandas DataFrame or pyarrow Table in one
vectorised pass (numpy and pyarrow.compute; a million rows by twenty columns takes well under
a few seconds):

- int and float columns: count, nulls, mean, standard deviation (sample, ``ddof=1``, as
  pandas), min, max, quantiles (linear interpolation, as numpy and pandas) and a histogram of
  ``bins`` equal-width bins between min and max (numpy's edges);
- string, category and bool columns: count, nulls, distinct values and the ``top`` most
  frequent values with their counts (ties by value);
- datetime columns: count, nulls, min and max as ISO strings.

NaN counts as a null. The result holds no NaN or infinity (``None`` instead): infinite values
are left out of the histogram, and a statistic they make infinite is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from triptych.data.frame import as_frame, count_true, jsonable, missing_mask
from triptych.errors import InvalidInput

#: Quantile keys of a numeric profile and their probabilities.
QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}

_BLOCKS = "▁▂▃▄▅▆▇█"


def profile(data: Any, bins: int = 20, top: int = 10) -> dict[str, Any]:
    """Profile every column of ``data``: ``{"rows": n, "columns": {name: {...}}}``.

    Numeric columns: ``dtype, count, nulls, mean, std, min, max, quantiles`` (keys of
    :data:`QUANTILES`) and ``histogram: {"edges": [...], "counts": [...]}``. String, category
    and bool columns: ``dtype, count, nulls, distinct, top: [[value, count], ...]``. Datetime
    columns: ``dtype, count, nulls, min, max``. Any other column: ``dtype, count, nulls``.
    ``count`` is the number of non-null values. Statistics of an empty column are ``None``.
    """
    for arg, value, least in (("bins", bins, 1), ("top", top, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"{arg} must be an integer >= {least}, got {value!r}")
    frame = as_frame(data)
    columns: dict[str, Any] = {}
    for name in frame.names:
        column = frame.table.column(name)
        dtype = frame.dtype(name)
        missing = missing_mask(column)
        nulls = count_true(missing)
        entry: dict[str, Any] = {"dtype": dtype, "count": frame.rows - nulls, "nulls": nulls}
        if dtype in ("int", "float"):
            entry.update(_numeric(column, dtype, bins))
        elif dtype in ("string", "category", "bool", "mixed", "null"):
            entry.update(_frequencies(column, missing, top))
        elif dtype == "datetime":
            entry.update(_datetime(column))
        columns[name] = entry
    return {"rows": frame.rows, "columns": columns}


def _numeric(column: Any, dtype: str, bins: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow.compute as pc

    values = np.asarray(column.to_numpy(), dtype=np.float64)  # nulls become NaN
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": dict.fromkeys(QUANTILES),
            "histogram": {"edges": [], "counts": []},
        }
    if dtype == "int":  # exact, even beyond 2**53
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
    else:
        low, high = float(values.min()), float(values.max())
    finite = values if np.isfinite(low) and np.isfinite(high) else values[np.isfinite(values)]
    with np.errstate(invalid="ignore", over="ignore"):  # infinities give NaN: None below
        quantiles = np.quantile(values, list(QUANTILES.values()))
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if values.size > 1 else None
    return {
        "mean": _number(mean),
        "std": _number(std),
        "min": jsonable(low),
        "max": jsonable(high),
        "quantiles": {k: _number(q) for k, q in zip(QUANTILES, quantiles, strict=True)},
        "histogram": _histogram(finite, bins),
    }


def _histogram(values: Any, bins: int) -> dict[str, list[Any]]:
    """numpy's equal-width histogram; one bin when float64 cannot split the range."""
    import numpy as np

    if values.size == 0:
        return {"edges": [], "counts": []}
    try:
        counts, edges = np.histogram(values, bins=bins)
    except ValueError:  # e.g. 2**62 + 1 and 2**62 + 3: one float64, no room for bins
        low, high = float(values.min()), float(values.max())
        return {"edges": [low, high], "counts": [int(values.size)]}
    return {"edges": [_number(e) for e in edges], "counts": counts.tolist()}


def _frequencies(column: Any, missing: Any, top: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    present = column.filter(pc.invert(missing))
    if pa.types.is_dictionary(present.type):
        present = present.cast(present.type.value_type)
    if pa.types.is_null(present.type) or len(present) == 0:
        return {"distinct": 0, "top": []}
    counted = pc.value_counts(present)
    table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("value", "ascending")])
    best = table.take(order.slice(0, top))
    values, counts = best.column("value").to_pylist(), best.column("count").to_pylist()
    pairs = zip(values, counts, strict=True)
    return {"distinct": len(counted), "top": [[jsonable(v), int(c)] for v, c in pairs]}


def _datetime(column: Any) -> dict[str, Any]:
    import pyarrow.compute as pc

    bounds = pc.min_max(column)
    return {"min": jsonable(bounds["min"].as_py()), "max": jsonable(bounds["max"].as_py())}


def _number(value: Any) -> float | None:
    """A float, or None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def sparkline(counts: Iterable[float]) -> str:
    """One block character per count, ``▁`` for zero up to ``█`` for the largest.

    Heights are relative to the largest count; any non-zero count is at least ``▂``, so empty
    bins stand out. ``""`` for no counts, all ``▁`` when every count is zero.
    """
    values = [float(c) for c in counts]
    for value in values:
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"sparkline counts must be finite and >= 0, got {value!r}")
    if not values:
        return ""
    peak = max(values)
    if peak == 0:
        return _BLOCKS[0] * len(values)
    top = len(_BLOCKS) - 1
    return "".join(
        _BLOCKS[0] if v == 0 else _BLOCKS[max(1, math.ceil(v / peak * top))] for v in values
    )
