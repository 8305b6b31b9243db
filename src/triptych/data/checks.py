"""Data tests: schema, missing values and distribution shift, each a structured verdict.

Every check returns a :class:`CheckResult` (``name``, ``passed``, a one-line ``message`` and
JSON-ready ``details``) and never raises for bad data: only for arguments that can never work
(:class:`~triptych.errors.InvalidInput`). Data is a pandas DataFrame or a pyarrow Table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from triptych.data.frame import Frame, as_frame, count_true, missing_mask
from triptych.data.schema import Schema, validate
from triptych.errors import InvalidInput

#: Proportion given to an empty bin or category so PSI stays finite.
PSI_EPSILON = 1e-4

_NUMERIC = ("int", "float")
_CATEGORICAL = ("string", "category", "bool")


@dataclass
class CheckResult:
    """The verdict of one data check."""

    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "details": self.details,
        }


def schema_check(data: Any, schema: Schema) -> CheckResult:
    """Passes when :func:`~triptych.data.schema.validate` finds no violation.

    ``details``: ``{"violations": [violation dicts]}``.
    """
    violations = validate(data, schema)
    if not violations:
        message = f"data matches the schema ({len(schema.columns)} columns)"
    else:
        kinds: dict[str, int] = {}
        for v in violations:
            kinds[v.kind] = kinds.get(v.kind, 0) + 1
        summary = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        message = f"{len(violations)} schema violation(s) ({summary}): {violations[0].message}"
    return CheckResult(
        "schema", not violations, message, {"violations": [v.to_dict() for v in violations]}
    )


def missing_values_check(
    data: Any,
    max_fraction: float | dict[str, float] = 0.0,
    columns: list[str] | None = None,
) -> CheckResult:
    """Passes when each column's fraction of nulls (NaN included) is at most its threshold.

    ``max_fraction`` is one threshold for every column or ``{column: threshold}``; with a
    mapping, the columns checked default to its keys and any other column named in
    ``columns`` gets 0. Without a mapping, ``columns`` defaults to every column. A checked
    column absent from the data fails. ``details``: ``{"columns": {name: {"present", "rows",
    "nulls", "fraction", "max_fraction", "passed"}}}``; an empty table has fraction 0.
    """
    thresholds = max_fraction if isinstance(max_fraction, dict) else {}
    default = 0.0 if isinstance(max_fraction, dict) else max_fraction
    for where, value in [("max_fraction", default), *thresholds.items()]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InvalidInput(f"max_fraction for {where} must be between 0 and 1, got {value!r}")
    frame = as_frame(data)
    if columns is None:
        columns = list(thresholds) if isinstance(max_fraction, dict) else frame.names
    _check_columns(columns)
    present = set(frame.names)
    details: dict[str, Any] = {}
    failed: list[str] = []
    for name in columns:
        limit = float(thresholds.get(name, default))
        if name not in present:
            details[name] = {
                "present": False,
                "rows": frame.rows,
                "nulls": None,
                "fraction": None,
                "max_fraction": limit,
                "passed": False,
            }
            failed.append(f"{name} (missing)")
            continue
        nulls = count_true(missing_mask(frame.table.column(name)))
        fraction = nulls / frame.rows if frame.rows else 0.0
        ok = fraction <= limit
        details[name] = {
            "present": True,
            "rows": frame.rows,
            "nulls": nulls,
            "fraction": fraction,
            "max_fraction": limit,
            "passed": ok,
        }
        if not ok:
            failed.append(f"{name} ({fraction:.2%} > {limit:.2%})")
    if failed:
        message = f"too many missing values in {len(failed)} column(s): {', '.join(failed)}"
    else:
        message = f"missing values within limits in {len(columns)} column(s)"
    return CheckResult("missing_values", not failed, message, {"columns": details})


def distribution_shift_check(
    reference: Any,
    current: Any,
    psi_threshold: float = 0.2,
    ks_pvalue: float | None = 0.05,
    columns: list[str] | None = None,
    bins: int = 10,
) -> CheckResult:
    """Passes when no column's distribution moved between ``reference`` and ``current``.

    Numeric columns (int, float): PSI over ``bins`` bins cut at the reference's quantiles
    (open-ended outer bins), and scipy's two-sample Kolmogorov-Smirnov test. Categorical
    columns (string, category, bool): PSI over the reference's categories, values unseen in
    the reference counting in one extra bucket. Empty bins get a proportion of
    :data:`PSI_EPSILON`. Nulls are left out (see :func:`missing_values_check`).

    A column drifts when its PSI exceeds ``psi_threshold`` or, for numeric columns, its KS
    p-value is below ``ks_pvalue`` (``None`` turns the KS test off). On large samples KS flags
    even tiny shifts, and with many columns some p-values fall below 0.05 by chance: PSI is
    the steadier signal. A column missing from ``current``, changed from numeric to
    categorical (or back), or empty on one side only also drifts.

    ``columns`` defaults to the reference's numeric and categorical columns. ``details``:
    ``{"columns": {name: {"kind", "psi", "ks_statistic", "ks_pvalue", "drifted", "reason",
    ...}}}``, plus ``"unseen"`` (count and up to 5 values) for categorical columns.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidInput(f"bins must be an integer >= 2, got {bins!r}")
    if not _is_number(psi_threshold) or psi_threshold < 0:
        raise InvalidInput(f"psi_threshold must be a number >= 0, got {psi_threshold!r}")
    if ks_pvalue is not None and (not _is_number(ks_pvalue) or not 0 <= ks_pvalue <= 1):
        raise InvalidInput(f"ks_pvalue must be between 0 and 1 (or None), got {ks_pvalue!r}")
    ref, cur = as_frame(reference), as_frame(current)
    if columns is None:
        columns = [n for n in ref.names if ref.dtype(n) in _NUMERIC + _CATEGORICAL]
    else:
        _check_columns(columns)
        for name in columns:
            if name not in ref.names:
                raise InvalidInput(f"column {name!r} is not in the reference data")
            if ref.dtype(name) not in _NUMERIC + _CATEGORICAL:
                raise InvalidInput(
                    f"column {name!r} is {ref.dtype(name)}: only numeric and categorical "
                    "columns are compared"
                )
    details: dict[str, Any] = {}
    for name in columns:
        details[name] = _compare(name, ref, cur, psi_threshold, ks_pvalue, bins)
    drifted = [name for name, d in details.items() if d["drifted"]]
    if drifted:
        parts = [f"{name} ({details[name]['reason']})" for name in drifted]
        message = f"drift in {len(drifted)} of {len(columns)} column(s): {', '.join(parts)}"
    else:
        message = f"no drift in {len(columns)} column(s)"
    return CheckResult("distribution_shift", not drifted, message, {"columns": details})


def _compare(
    name: str,
    ref: Frame,
    cur: Frame,
    psi_threshold: float,
    ks_pvalue: float | None,
    bins: int,
) -> dict[str, Any]:
    kind = "numeric" if ref.dtype(name) in _NUMERIC else "categorical"
    out: dict[str, Any] = {
        "kind": kind,
        "psi": None,
        "ks_statistic": None,
        "ks_pvalue": None,
        "drifted": False,
        "reason": None,
    }
    if kind == "categorical":
        out["unseen"] = {"count": 0, "values": []}
    if name not in cur.names:
        return {**out, "drifted": True, "reason": "missing from the current data"}
    current_kind = cur.dtype(name)
    expected = _NUMERIC if kind == "numeric" else _CATEGORICAL
    if current_kind not in expected:
        return {
            **out,
            "drifted": True,
            "reason": f"dtype changed from {ref.dtype(name)} to {current_kind}",
        }
    if kind == "numeric":
        a, b = _numbers(ref, name), _numbers(cur, name)
    else:
        a, b = _labels(ref, name), _labels(cur, name)
    out["reference_count"], out["current_count"] = len(a), len(b)
    if len(a) == 0 or len(b) == 0:
        if len(a) == len(b):
            return {**out, "reason": "no values on either side"}
        side = "reference" if len(a) == 0 else "current"
        return {**out, "drifted": True, "reason": f"no values in the {side} data"}
    if kind == "numeric":
        out["psi"] = _numeric_psi(a, b, bins)
        if ks_pvalue is not None:
            from scipy.stats import ks_2samp

            result = ks_2samp(a, b)
            out["ks_statistic"] = float(result.statistic)
            out["ks_pvalue"] = float(result.pvalue)
    else:
        psi, unseen_count, unseen_values = _categorical_psi(a, b)
        out["psi"] = psi
        out["unseen"] = {"count": unseen_count, "values": unseen_values}
    reasons = []
    if out["psi"] > psi_threshold:
        reasons.append(f"psi {out['psi']:.3g} > {psi_threshold:g}")
    if out["ks_pvalue"] is not None and ks_pvalue is not None and out["ks_pvalue"] < ks_pvalue:
        reasons.append(f"ks p-value {out['ks_pvalue']:.3g} < {ks_pvalue:g}")
    out["drifted"] = bool(reasons)
    out["reason"] = "; ".join(reasons) or None
    return out


def _numbers(frame: Frame, name: str) -> Any:
    """Non-null, non-NaN values of a numeric column as float64 (infinities kept)."""
    import numpy as np

    values = np.asarray(frame.table.column(name).to_numpy(), dtype=np.float64)
    return values[~np.isnan(values)]


def _labels(frame: Frame, name: str) -> Any:
    """Non-null values of a categorical column as a string array."""
    import pyarrow as pa

    column = frame.table.column(name).drop_null()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.cast(pa.large_string())


def _psi(expected: Any, actual: Any) -> float:
    """PSI of two count vectors over the same buckets."""
    import numpy as np

    p = np.maximum(expected / expected.sum(), PSI_EPSILON)
    q = np.maximum(actual / actual.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _numeric_psi(reference: Any, current: Any, bins: int) -> float:
    import numpy as np

    cuts = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    cuts = cuts[np.isfinite(cuts)]
    # Bucket i holds values in [cuts[i-1], cuts[i]); the outer buckets are open-ended.
    expected = np.bincount(np.searchsorted(cuts, reference, side="right"), minlength=len(cuts) + 1)
    actual = np.bincount(np.searchsorted(cuts, current, side="right"), minlength=len(cuts) + 1)
    return _psi(expected.astype(np.float64), actual.astype(np.float64))


def _categorical_psi(reference: Any, current: Any) -> tuple[float, int, list[Any]]:
    """PSI over the reference's categories plus one bucket for unseen values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ref_counts = pc.value_counts(reference)
    categories = ref_counts.field("values")
    cur_counts = pc.value_counts(current)
    cur_values = cur_counts.field("values")
    position = pc.index_in(cur_values, value_set=categories)
    seen = pc.is_valid(position)
    expected = np.append(ref_counts.field("counts").to_numpy().astype(np.float64), 0.0)
    actual = np.zeros(len(categories) + 1)
    # value_counts lists each value once, so each category receives one count.
    actual[position.filter(seen).to_numpy(zero_copy_only=False).astype(np.int64)] = (
        cur_counts.field("counts").filter(seen).to_numpy(zero_copy_only=False)
    )
    unseen_counts = cur_counts.field("counts").filter(pc.invert(seen))
    unseen_values = cur_values.filter(pc.invert(seen))
    actual[-1] = float(pc.sum(unseen_counts).as_py() or 0)
    order = pc.sort_indices(
        pa.table({"v": unseen_values, "c": unseen_counts}),
        sort_keys=[("c", "descending"), ("v", "ascending")],
    )
    examples = unseen_values.take(order.slice(0, 5)).to_pylist()
    return _psi(expected, actual), int(actual[-1]), examples


def _is_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and not (isinstance(value, float) and math.isnan(value))
    )


def _check_columns(columns: Any) -> None:
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput(
            "columns must be a list of column names", hint='e.g. columns=["age", "income"]'
        )
