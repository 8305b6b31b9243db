"""A worker process of a parallel search: ``python -m triptych.automl.worker FOLDER INDEX``.

``FOLDER`` holds ``job.json`` (storage, study, space, deadline, quota, tracking addresses),
the training data (``X.parquet``, ``y.parquet``) and the folds (``fold.npy``), written by
:func:`triptych.automl.executors.run_processes`. The worker runs the same ask/tell loop as
the driver on the same study and records its trials as runs under the same parent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str, index: int) -> None:
    import numpy as np
    import optuna
    import pandas as pd

    from triptych.automl import inputs, metrics, space, storage, studies
    from triptych.automl.records import TrialRecorder
    from triptych.automl.search import Data, Quota, work
    from triptych.tracking.client import Client

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(folder)
    job = json.loads((root / "job.json").read_text(encoding="utf-8"))
    ctx = space.Context.from_dict(job["ctx"])
    X = pd.read_parquet(root / "X.parquet")
    inputs.normalise_categoricals(X, ctx.categorical)
    y_raw = pd.read_parquet(root / "y.parquet")["y"].to_numpy()
    y = y_raw.astype(np.float64) if ctx.task == "regression" else inputs.as_labels(y_raw)
    classes = None if ctx.task == "regression" else np.unique(y)
    data = Data(X, y, np.load(root / "fold.npy", allow_pickle=False), classes)
    metric = metrics.METRICS[job["metric"]]
    rdb = storage.open_storage(storage.StorageSpec.from_dict(job["storage"]))
    study = studies.load_study(rdb, job["study_name"], int(job["seed"]) + index)
    client = Client(job["tracking_uri"], job["artifact_uri"])
    recorder = TrialRecorder(client, job["parent_run_id"], job["study_name"], ctx)
    quota = Quota(job["n_trials"], frozenset(job["stale"]))
    try:
        work(study, ctx, data, metric, float(job["deadline"]), quota, recorder)
    finally:
        storage.close_storage(rdb)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
