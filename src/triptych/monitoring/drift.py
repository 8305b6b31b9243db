"""Drift between a reference frame and a current one: per-column statistics and verdicts.

The verdicts rest on **effect sizes**, confirmed by a test. With a million rows every
p-value is tiny, so a test alone would flag shifts nobody cares about; with a hundred rows
the effect sizes are noisy, so an effect alone would flag sampling noise. A numeric column
drifts when its PSI, its normalised Wasserstein distance or its KS statistic passes its
threshold *and* the KS test is significant; a categorical one when its PSI or Cramér's V
passes *and* the chi-square test is significant; any column when its missing rate moves by
more than its threshold (significantly) or its type changes. Schema problems (missing,
unexpected or retyped columns) are reported, never raised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ColumnDrift", "DriftReport", "Thresholds", "compare"]


@dataclass(frozen=True)
class Thresholds:
    """Default cut-offs; each is a common convention in the field (see docs/monitoring.md).

    The normalised Wasserstein distance is W1 divided by the reference's standard deviation
    (as Evidently does): a pure mean shift of ``d`` standard deviations scores ``d``, which is
    easy to read. A constant reference column (std 0) scores infinity on any change.
    """

    psi: float = 0.2
    """PSI above this is a significant shift (the credit-scoring rule of thumb)."""
    wasserstein: float = 0.1
    """Normalised W1 above this (a tenth of a standard deviation) drifts."""
    ks_statistic: float = 0.1
    """A CDF gap of at least this (KS statistic) drifts."""
    ks_pvalue: float = 0.01
    """A numeric effect counts only when the KS test's p is below this."""
    cramers_v: float = 0.1
    """Cramér's V (the chi-square effect size) of at least this drifts."""
    chi2_pvalue: float = 0.01
    """A categorical effect, or a missing-rate change, counts only when p is below this."""
    missing_rate: float = 0.05
    """An absolute change in the share of missing values above this drifts."""
    dataset_share: float = 0.5
    """The dataset drifts when at least this share of its feature columns drift."""

    @classmethod
    def of(cls, value: Thresholds | dict[str, float] | None) -> Thresholds:
        """Accept a Thresholds, a partial dict of overrides, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Thresholds):
            return value
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise InvalidInput(
                f"unknown drift threshold(s): {', '.join(unknown)}",
                hint=f"use some of: {', '.join(sorted(known))}",
            )
        for key, v in value.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or not v >= 0:
                raise InvalidInput(
                    f"drift threshold {key} must be a number >= 0, got {v!r}",
                    hint="pass e.g. thresholds={'psi': 0.25}",
                )
        return cls(**{k: float(v) for k, v in value.items()})


@dataclass
class ColumnDrift:
    """One column's statistics and verdict. Statistics that do not apply are None."""

    name: str
    kind: str  # "numeric" | "categorical"
    drifted: bool
    reasons: list[str]
    is_prediction: bool = False
    ref_count: int = 0
    cur_count: int = 0
    ref_missing: float = 0.0
    cur_missing: float = 0.0
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    wasserstein: float | None = None
    chi2: float | None = None
    chi2_pvalue: float | None = None
    cramers_v: float | None = None
    new_categories: list[Any] = field(default_factory=list)


@dataclass
class DriftReport:
    """What :func:`compare` found. ``to_dict()`` is JSON-able, for storage and reports."""

    columns: dict[str, ColumnDrift]
    drifted: bool
    drifted_share: float
    prediction_drifted: bool | None
    missing_columns: list[str]
    unexpected_columns: list[str]
    type_changes: dict[str, dict[str, str]]
    thresholds: Thresholds
    ref_rows: int
    cur_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns whose verdict is drifted."""
        return [name for name, col in self.columns.items() if col.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (infinities and NaN become None)."""
        return _jsonable(
            {
                "drifted": self.drifted,
                "drifted_share": self.drifted_share,
                "prediction_drifted": self.prediction_drifted,
                "ref_rows": self.ref_rows,
                "cur_rows": self.cur_rows,
                "schema": {
                    "missing_columns": self.missing_columns,
                    "unexpected_columns": self.unexpected_columns,
                    "type_changes": self.type_changes,
                },
                "thresholds": asdict(self.thresholds),
                "columns": {name: asdict(col) for name, col in self.columns.items()},
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column, indexed by name."""
        import pandas as pd

        rows = [asdict(col) for col in self.columns.values()]
        for row in rows:
            row["reasons"] = "; ".join(row["reasons"])
        return pd.DataFrame(rows).set_index("name")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


def _kind(series: pd.Series) -> str:
    """'numeric' for numbers (not bool), 'categorical' for everything else."""
    from pandas.api import types

    if types.is_bool_dtype(series.dtype):
        return "categorical"
    if types.is_numeric_dtype(series.dtype):
        return "numeric"
    return "categorical"


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    prediction: str | None = None,
    thresholds: Thresholds | dict[str, float] | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column and give drift verdicts.

    ``columns`` limits the comparison (default: every reference column); ``prediction``
    names the model-output column, compared like a feature and reported as prediction drift.
    Raises InvalidInput for empty frames, unknown names or no column in common.
    """
    import pandas as pd

    limits = Thresholds.of(thresholds)
    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(
                f"the {label} data must be a pandas DataFrame, got {type(frame).__name__}",
                hint="load it with pandas.read_parquet/read_csv first",
            )
        if len(frame) == 0:
            raise InvalidInput(
                f"the {label} data has no rows", hint="pass a non-empty window of data"
            )
    ref_cols = [str(c) for c in reference.columns]
    cur_cols = {str(c) for c in current.columns}
    wanted = list(columns) if columns is not None else list(ref_cols)
    if prediction is not None and prediction not in wanted:
        wanted.append(prediction)
    unknown = [c for c in wanted if c not in ref_cols]
    if unknown:
        raise InvalidInput(
            f"column(s) not in the reference data: {', '.join(unknown)}",
            hint=f"choose among: {', '.join(ref_cols)}",
        )
    missing = [c for c in wanted if c not in cur_cols]
    common = [c for c in wanted if c in cur_cols]
    if not common:
        raise InvalidInput(
            "the reference and current data have no column in common",
            hint="check that both frames hold the same features (names are case-sensitive)",
        )
    unexpected = sorted(cur_cols - set(ref_cols)) if columns is None else []

    results: dict[str, ColumnDrift] = {}
    type_changes: dict[str, dict[str, str]] = {}
    for name in common:
        ref_s, cur_s = reference[name], current[name]
        kind, cur_kind = _kind(ref_s), _kind(cur_s)
        if kind != cur_kind:
            type_changes[name] = {"reference": str(ref_s.dtype), "current": str(cur_s.dtype)}
        results[name] = _column(name, ref_s, cur_s, kind, cur_kind, limits)
        results[name].is_prediction = name == prediction

    features = [col for col in results.values() if not col.is_prediction]
    share = sum(col.drifted for col in features) / len(features) if features else 0.0
    pred = results.get(prediction) if prediction is not None else None
    return DriftReport(
        columns=results,
        drifted=bool(features) and share >= limits.dataset_share,
        drifted_share=share,
        prediction_drifted=pred.drifted if pred is not None else None,
        missing_columns=missing,
        unexpected_columns=unexpected,
        type_changes=type_changes,
        thresholds=limits,
        ref_rows=len(reference),
        cur_rows=len(current),
    )


def _column(
    name: str,
    ref_s: pd.Series,
    cur_s: pd.Series,
    kind: str,
    cur_kind: str,
    limits: Thresholds,
) -> ColumnDrift:

    from triptych.monitoring import stats  # numpy/scipy: imported on first use

    numeric = kind == "numeric" and cur_kind == "numeric"
    if numeric:  # +-inf is no measurable value: it counts as missing, like NaN and None
        ref, ref_na = _finite(ref_s)
        cur, cur_na = _finite(cur_s)
    else:
        ref_na, cur_na = ref_s.isna().to_numpy(), cur_s.isna().to_numpy()
    col = ColumnDrift(
        name=name,
        kind=kind if numeric else "categorical",
        drifted=False,
        reasons=[],
        ref_count=int(ref_na.size - ref_na.sum()),
        cur_count=int(cur_na.size - cur_na.sum()),
        ref_missing=float(ref_na.mean()),
        cur_missing=float(cur_na.mean()),
    )
    if abs(col.cur_missing - col.ref_missing) > limits.missing_rate:
        ref_missing, cur_missing = int(ref_na.sum()), int(cur_na.sum())
        p = stats.proportions_pvalue(ref_missing, ref_na.size, cur_missing, cur_na.size)
        if p < limits.chi2_pvalue:
            col.reasons.append(
                f"missing rate {col.ref_missing:.1%} -> {col.cur_missing:.1%} (p={p:.2g})"
            )
    if cur_kind != kind:  # compared as categories below; a retyped column is drifted anyway
        col.reasons.append(f"type changed: {ref_s.dtype} -> {cur_s.dtype}")
    if col.ref_count == 0 or col.cur_count == 0:
        if col.ref_count != col.cur_count:
            col.reasons.append("no values on one side")
        col.drifted = bool(col.reasons)
        return col

    # Effect sizes decide; the test only confirms the effect is not sampling noise.
    effects: list[str] = []
    if numeric:
        n = stats.numeric(ref, cur)  # drops the NaN after sorting, without a copy
        col.psi, col.ks_statistic, col.ks_pvalue = n.psi, n.ks_statistic, n.ks_pvalue
        col.wasserstein = n.wasserstein
        if n.psi > limits.psi:
            effects.append(f"PSI {n.psi:.3f} > {limits.psi}")
        if n.wasserstein > limits.wasserstein:
            effects.append(f"Wasserstein {n.wasserstein:.3f} > {limits.wasserstein}")
        if n.ks_statistic >= limits.ks_statistic:
            effects.append(f"KS {n.ks_statistic:.3f} >= {limits.ks_statistic}")
        if effects and n.ks_pvalue < limits.ks_pvalue:
            col.reasons += [*effects, f"KS p={n.ks_pvalue:.2g}"]
    else:
        ref_counts = _counts(ref_s[~ref_na])
        cur_counts = _counts(cur_s[~cur_na])
        c = stats.categorical(ref_counts, cur_counts)
        col.psi, col.chi2, col.chi2_pvalue = c.psi, c.chi2, c.chi2_pvalue
        col.cramers_v, col.new_categories = c.cramers_v, c.new_categories
        if c.psi > limits.psi:
            effects.append(f"PSI {c.psi:.3f} > {limits.psi}")
        if c.cramers_v >= limits.cramers_v:
            effects.append(f"Cramér's V {c.cramers_v:.3f} >= {limits.cramers_v}")
        if effects and c.chi2_pvalue < limits.chi2_pvalue:
            col.reasons += [*effects, f"chi-square p={c.chi2_pvalue:.2g}"]
    col.drifted = bool(col.reasons)
    return col


def _finite(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values with +-inf turned into NaN (copied only then), and the missing mask."""
    import numpy as np

    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        values = np.where(infinite, np.nan, values)
    return values, np.isnan(values)


def _counts(values: pd.Series) -> dict[Any, int]:
    """Category -> count; values are compared as strings when the two sides' types differ."""
    counts = values.value_counts(sort=False, dropna=True)
    return {_key(k): int(v) for k, v in counts.items() if v > 0}


def _key(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
