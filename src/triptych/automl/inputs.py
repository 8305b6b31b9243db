"""What AutoML is given: the table, the target, the columns' roles, and the CV folds.

Everything here checks before anything is recorded: a missing target column, a target of the
wrong kind, too few rows or a class with fewer rows than folds are an :class:`InvalidInput`
raised before a run or a study exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triptych.errors import InvalidInput

DATASET_PREFIX = "datasets:/"


@dataclass
class Prepared:
    """The training table split into features and target, with what the search needs."""

    X: Any  # pandas DataFrame of the feature columns
    y: Any  # numpy array
    target: str
    numeric: list[str]
    categorical: list[str]
    classes: Any  # sorted class labels (classification) or None
    digest: str  # content digest of the whole table (features and target)
    source: Any  # what to record as the run's data input: a dataset address, a path or the frame
    source_name: str

    @property
    def n_rows(self) -> int:
        return len(self.X)


def load_frame(data: Any, what: str = "data") -> tuple[Any, Any, str]:
    """``(frame, source, digest)`` for a DataFrame, a ``datasets:/name@v`` address or a path
    to a CSV or Parquet file."""
    import pandas as pd

    from triptych.tracking.fingerprint import describe_input

    if isinstance(data, pd.DataFrame):
        return data, data, describe_input(data).digest
    if isinstance(data, (str, Path)):
        text = str(data)
        path = Path(text)
        if not text.startswith(DATASET_PREFIX) and path.is_file():
            suffix = path.suffix.lower()
            if suffix == ".parquet":
                frame = pd.read_parquet(path)
            elif suffix in (".csv", ".tsv"):
                frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
            else:
                raise InvalidInput(
                    f"{what}: cannot read {text!r}",
                    hint="give a .csv, .tsv or .parquet file, a DataFrame, or datasets:/NAME@V",
                )
            return frame, str(path), describe_input(path).digest
        if not text.startswith(DATASET_PREFIX) and (
            path.suffix.lower() in (".csv", ".tsv", ".parquet") or "/" in text
        ):
            raise InvalidInput(
                f"{what}: no file at {text!r}",
                hint="give an existing .csv/.parquet file, or a dataset as datasets:/NAME@VERSION",
            )
        from triptych import data as datasets

        version = datasets.get(text)
        return datasets.load(version.uri), version.uri, version.digest
    raise InvalidInput(
        f"{what} must be a pandas DataFrame, a datasets:/NAME@VERSION address or a file path, "
        f"not {type(data).__name__}",
    )


_UNSUPPORTED = ("datetime", "timedelta", "period", "interval", "complex")


def split_columns(frame: Any, target: str) -> tuple[list[str], list[str]]:
    """``(numeric, categorical)`` feature columns; InvalidInput for columns AutoML cannot use."""
    import pandas as pd

    numeric: list[str] = []
    categorical: list[str] = []
    odd: list[str] = []
    for name, dtype in frame.dtypes.items():
        if name == target:
            continue
        if not isinstance(name, str):
            raise InvalidInput(
                f"column names must be strings, got {name!r}",
                hint="rename the columns, e.g. df.columns = df.columns.astype(str)",
            )
        kind = str(dtype).lower()
        if any(k in kind for k in _UNSUPPORTED):
            odd.append(f"{name} ({dtype})")
        elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        else:
            categorical.append(name)
    if odd:
        raise InvalidInput(
            f"AutoML cannot use column(s) {', '.join(odd)}",
            hint="convert them to numbers (e.g. timestamps to year, month, day) or drop them",
        )
    if not numeric and not categorical:
        raise InvalidInput(
            f"no feature columns besides the target {target!r}",
            hint="the data must have at least one column to predict from",
        )
    return numeric, categorical


def prepare(data: Any, target: Any, task: str, cv: int) -> Prepared:
    """Load and check the training data for ``task`` with ``cv`` folds."""
    import numpy as np
    import pandas as pd

    frame, source, digest = load_frame(data)
    if not isinstance(target, str) or target not in frame.columns:
        columns = ", ".join(map(str, list(frame.columns)[:20]))
        raise InvalidInput(f"no target column {target!r} in the data", hint=f"columns: {columns}")
    numeric, categorical = split_columns(frame, target)
    column = frame[target]
    missing = int(column.isna().sum())
    if missing:
        raise InvalidInput(
            f"the target {target!r} has {missing} missing value(s)",
            hint="drop those rows first, e.g. df.dropna(subset=[target])",
        )
    if len(frame) < max(2 * cv, 10):
        raise InvalidInput(
            f"{len(frame)} rows are too few for {cv}-fold cross-validation",
            hint=f"give at least {max(2 * cv, 10)} rows, or fewer folds (cv=)",
        )
    classes = None
    if task == "regression":
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            raise InvalidInput(
                f"regression needs a numeric target; {target!r} is {column.dtype}",
                hint="use task='classification' for labels",
            )
        y = column.to_numpy(dtype=np.float64)
        if not np.isfinite(y).all():
            raise InvalidInput(f"the target {target!r} has infinite values")
    else:
        y = as_labels(column.to_numpy())
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise InvalidInput(
                f"classification needs at least two classes; {target!r} has {len(classes)}"
            )
        if counts.min() < cv:
            rare = classes[int(np.argmin(counts))]
            raise InvalidInput(
                f"class {rare!r} has {int(counts.min())} row(s), fewer than the {cv} CV folds",
                hint=f"use cv={max(2, int(counts.min()))} or fewer, or drop that class",
            )
    X = frame.drop(columns=[target])
    normalise_categoricals(X, categorical)
    name = source if isinstance(source, str) else "automl.data"
    return Prepared(
        X=X.reset_index(drop=True),
        y=y,
        target=target,
        numeric=numeric,
        categorical=categorical,
        classes=classes,
        digest=digest,
        source=source,
        source_name=name,
    )


def holdout(data: Any, prepared: Prepared) -> tuple[Any, Any]:
    """``(X, y)`` of a held-out table with the training table's columns."""
    frame, _, _ = load_frame(data, what="test")
    if prepared.target not in frame.columns:
        raise InvalidInput(f"no target column {prepared.target!r} in the test data")
    wanted = list(prepared.X.columns)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the test data lacks column(s) {', '.join(missing)}")
    return frame[wanted], target_values(frame[prepared.target], prepared)


def target_values(column: Any, prepared: Prepared) -> Any:
    import numpy as np

    if prepared.classes is None:
        return np.asarray(column, dtype=np.float64)
    return as_labels(np.asarray(column))


def as_labels(y: Any) -> Any:
    """Class labels as numbers, or as Python objects (never a fixed-width string array)."""
    return y if y.dtype.kind in "biuf" else y.astype(object)


def normalise_categoricals(X: Any, categorical: Any) -> None:
    """Text columns as objects with NaN for missing values, whatever pandas version or file
    format produced them, so the encoder sees one spelling (in place)."""
    import numpy as np

    for name in categorical:
        if str(X[name].dtype) != "category":
            X[name] = X[name].astype(object).where(X[name].notna(), np.nan)


def folds(y: Any, task: str, cv: int, seed: int) -> Any:
    """The fold of each row (shuffled; stratified for classification), the same for every
    trial and every worker."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter: Any
    if task == "classification":
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    fold = np.empty(len(y), dtype=np.int64)
    for i, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        fold[test] = i
    return fold
