"""Row-by-row checks of a table against a model signature, for batch scoring.

The serving path refuses a whole request on the first bad value; a batch job must instead
keep the good rows and set the bad ones aside with a reason. So each signature column is
converted on its own and every value that cannot be is marked, with what was wrong, on its
row. Text is parsed (CSV files arrive as text), ints feed floats, integral floats feed ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from triptych.models.signature import Signature

_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


@dataclass
class Checked:
    """A chunk after the checks: the model's columns (typed) for the rows that passed."""

    frame: pd.DataFrame  # signature columns, valid rows only, index = position in the chunk
    valid: np.ndarray  # bool mask over the chunk's rows
    reasons: list[str | None]  # per row of the chunk: why it was rejected, None if valid


def missing_columns(signature: Signature, names: list[str]) -> list[str]:
    return [n for n in signature.names if n not in set(names)]


def check(batch: pa.RecordBatch | pa.Table, signature: Signature, allow_missing: bool) -> Checked:
    """Convert each signature column of ``batch`` to its dtype and find the rows that fail."""
    import numpy as np
    import pandas as pd

    missing = missing_columns(signature, batch.schema.names)
    if missing:
        raise InvalidInput(
            f"the input has no column(s) {', '.join(repr(m) for m in missing)}",
            hint=f"the model takes: {', '.join(signature.names)}",
        )
    n = batch.num_rows
    reasons: list[str | None] = [None] * n
    columns: dict[str, Any] = {}
    for spec in signature.inputs:
        raw = batch.column(batch.schema.get_field_index(spec.name)).to_pandas()
        values, bad, why = _convert(raw, spec.dtype, allow_missing)
        columns[spec.name] = values
        for i in np.flatnonzero(bad):
            if reasons[i] is None:
                reasons[i] = f"{spec.name}: {why(int(i))}"
    valid = np.fromiter((r is None for r in reasons), dtype=bool, count=n)
    frame = pd.DataFrame(columns)
    return Checked(frame[valid], valid, reasons)


def _convert(raw: pd.Series, dtype: str | None, allow_missing: bool) -> tuple[Any, Any, Any]:
    """``(values, bad mask, reason(i))`` for one column."""
    import pandas as pd

    from triptych.models.signature import kind_of

    null = raw.isna().to_numpy()
    kind = kind_of(raw)
    shown = raw.astype("string") if kind not in ("float", "int", "bool") else raw

    def missing_or(text: str) -> Any:
        return lambda i: "missing value" if null[i] else text.format(value=_cut(shown.iloc[i]))

    if dtype is None:
        return raw, raw.isna().to_numpy() & False, missing_or("")
    if dtype in ("float", "int"):
        if kind in ("float", "int", "empty"):
            number = raw.astype("float64")
        elif kind == "bool":
            number = pd.Series([float("nan")] * len(raw), index=raw.index)
        else:
            number = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").astype(
                "float64"
            )
        unparsed = number.isna().to_numpy() & ~null
        bad = unparsed | (null & (not allow_missing or dtype == "int"))
        word = "a number" if dtype == "float" else "an integer"
        if dtype == "int":
            fraction = (number % 1 != 0).to_numpy() & ~number.isna().to_numpy()
            bad |= fraction
            number = number.where(~pd.Series(bad, index=raw.index), 0).astype("int64")
        return number, bad, missing_or(f"{{value}} is not {word}")
    if dtype == "bool":
        if kind == "bool":
            return raw.fillna(False).astype(bool), null, missing_or("")
        text = raw.astype("string").str.strip().str.lower()
        flag = text.isin(_TRUE).to_numpy()
        bad = ~flag & ~text.isin(_FALSE).to_numpy()
        return pd.Series(flag, index=raw.index), bad, missing_or("{value} is not true or false")
    if dtype in ("string", "category"):
        if kind not in ("string", "category", "empty"):
            text = raw.astype("string")
            return text, null | ~null, missing_or(f"{{value}} is {kind}, not text")
        return raw.astype("string"), null & (not allow_missing), missing_or("")
    if dtype == "datetime":
        when = pd.to_datetime(raw, errors="coerce", utc=True)
        bad = (when.isna().to_numpy() & ~null) | (null & (not allow_missing))
        return when, bad, missing_or("{value} is not a date/time")
    raise InvalidInput(f"unknown signature dtype {dtype!r}")  # pragma: no cover


def _cut(value: Any) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 40 else text[:37] + "..."
