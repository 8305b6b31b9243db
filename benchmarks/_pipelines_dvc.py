"""The DVC side of the pipeline benchmark: the example's six steps as DVC stages (scripts and
``dvc.yaml``), the same work as triptych's pipeline. Driver only (see _machine.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

DVC_STAGES = {
    "ingest": """
import os
from sklearn.datasets import load_diabetes
os.makedirs("data", exist_ok=True)
load_diabetes(as_frame=True).frame.to_csv("data/raw.csv", index=False)
""",
    "validate": """
import json
import pandas as pd
import yaml
p = yaml.safe_load(open("params.yaml"))["validate"]
frame = pd.read_csv("data/raw.csv")
checks = {
    "schema": all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes),
    "missing": float(frame.isna().mean().max()) <= p["max_missing"],
}
if not all(checks.values()):
    raise SystemExit(f"data tests failed: {checks}")
json.dump(checks, open("data/checks.json", "w"))
""",
    "split": """
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split
p = yaml.safe_load(open("params.yaml"))["split"]
frame = pd.read_csv("data/raw.csv")
train, test = train_test_split(frame, test_size=p["test_size"], random_state=p["seed"])
train.to_csv("data/train.csv", index=False)
test.to_csv("data/test.csv", index=False)
""",
    "train": """
import os
import joblib
import pandas as pd
import yaml
from sklearn.linear_model import Ridge
p = yaml.safe_load(open("params.yaml"))["train"]
train = pd.read_csv("data/train.csv")
model = Ridge(alpha=p["alpha"]).fit(train.drop(columns="target"), train["target"])
os.makedirs("model", exist_ok=True)
joblib.dump(model, "model/model.pkl")
""",
    "evaluate": """
import json
import os
import joblib
import pandas as pd
from sklearn.metrics import mean_squared_error
model = joblib.load("model/model.pkl")
test = pd.read_csv("data/test.csv")
mse = float(mean_squared_error(test["target"], model.predict(test.drop(columns="target"))))
os.makedirs("metrics", exist_ok=True)
json.dump({"mse": mse}, open("metrics/scores.json", "w"))
""",
    "register": """
import json
import os
import joblib
import pandas as pd
import yaml
p = yaml.safe_load(open("params.yaml"))["register"]
model = joblib.load("model/model.pkl")
test = pd.read_csv("data/test.csv")
scores = json.load(open("metrics/scores.json"))
model.predict(test.drop(columns="target").head(5))  # the packaged model must load and predict
os.makedirs("registry", exist_ok=True)
decision = {"model": p["model_name"], "mse": scores["mse"], "promoted": True}
json.dump(decision, open("registry/decision.json", "w"))
""",
}

DVC_GRAPH: dict[str, dict[str, list[str]]] = {
    "ingest": {"deps": [], "params": ["ingest.name"], "outs": ["data/raw.csv"]},
    "validate": {
        "deps": ["data/raw.csv"],
        "params": ["validate.max_missing", "validate.psi_threshold"],
        "outs": ["data/checks.json"],
    },
    "split": {
        "deps": ["data/raw.csv", "data/checks.json"],
        "params": ["split.test_size", "split.seed"],
        "outs": ["data/train.csv", "data/test.csv"],
    },
    "train": {"deps": ["data/train.csv"], "params": ["train.alpha"], "outs": ["model/model.pkl"]},
    "evaluate": {
        "deps": ["model/model.pkl", "data/test.csv"],
        "params": [],
        "outs": ["metrics/scores.json"],
    },
    "register": {
        "deps": ["model/model.pkl", "data/test.csv", "metrics/scores.json"],
        "params": ["register.model_name"],
        "outs": ["registry/decision.json"],
    },
}


def write_project(folder: Path, params: Path, python: str) -> None:
    """``folder`` with params.yaml, one script per stage and the dvc.yaml that runs them."""
    folder.mkdir()
    shutil.copyfile(params, folder / "params.yaml")
    (folder / "stages").mkdir()
    lines = ["stages:"]
    for name, script in DVC_STAGES.items():
        (folder / "stages" / f"{name}.py").write_text(script.lstrip(), encoding="utf-8")
        spec = DVC_GRAPH[name]
        lines += [f"  {name}:", f"    cmd: {python} stages/{name}.py"]
        lines += ["    deps:", f"      - stages/{name}.py", *(f"      - {d}" for d in spec["deps"])]
        if spec["params"]:
            lines += ["    params:", *(f"      - {p}" for p in spec["params"])]
        lines += ["    outs:", *(f"      - {o}" for o in spec["outs"])]
    (folder / "dvc.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
