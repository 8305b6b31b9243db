"""The reference example as a script: Ridge regression on scikit-learn's diabetes data.

    python examples/diabetes/train.py --alpha 0.5
    triptych runs list

Logs the parameters, the test MSE, the fitted model (a skops file: safe to load, no pickle)
and the data it trained on; triptych adds the code and environment legs of the fingerprint.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import skops.io
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

import triptych

TEST_SIZE = 0.2
SEED = 0


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.5, help="Ridge regularisation strength")
    parser.add_argument("--experiment", default="diabetes", help="experiment name")
    args = parser.parse_args(argv)

    data = load_diabetes(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_SIZE, random_state=SEED
    )

    with triptych.start_run(experiment=args.experiment, name=f"ridge-{args.alpha:g}") as run:
        triptych.log_params(
            {"alpha": args.alpha, "model": "Ridge", "test_size": TEST_SIZE, "split_seed": SEED}
        )
        triptych.log_input(x_train.assign(target=y_train), name="train")
        triptych.log_input(x_test.assign(target=y_test), name="test")

        model = Ridge(alpha=args.alpha).fit(x_train, y_train)
        mse = float(mean_squared_error(y_test, model.predict(x_test)))
        triptych.log_metric("mse", mse)

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.skops"
            skops.io.dump(model, path)
            triptych.log_artifact(path, artifact_path="model")

    print(f"run {run.run_id}  alpha={args.alpha:g}  mse={mse:.1f}")
    return mse


if __name__ == "__main__":
    main()
