"""The reference example as a script: Ridge regression on scikit-learn's diabetes data.

    python examples/diabetes/train.py --alpha 0.5
    triptych runs list

Registers the data as the dataset ``diabetes`` (adding identical data again is a no-op),
trains from ``datasets:/diabetes@latest`` on a recorded 80/20 split, and logs the parameters,
the test MSE and the fitted model (``triptych.log_model``: a skops file, safe to load, no
pickle), then gates it: it becomes ``models:/diabetes@champion`` only if it beats the
champion. triptych adds the code and environment legs of the fingerprint; the dataset
version is the data leg.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

import triptych

TEST_SIZE = 0.2
SEED = 0
TARGET = "target"


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.5, help="Ridge regularisation strength")
    parser.add_argument("--experiment", default="diabetes", help="experiment name")
    args = parser.parse_args(argv)

    triptych.data.add(
        "diabetes", load_diabetes(as_frame=True).frame, description="scikit-learn diabetes"
    )
    data = triptych.data.load("datasets:/diabetes@latest")

    with triptych.start_run(experiment=args.experiment, name=f"ridge-{args.alpha:g}") as run:
        triptych.log_input("datasets:/diabetes@latest")
        triptych.log_params({"alpha": args.alpha, "model": "Ridge"})
        split = triptych.data.split(data, test_size=TEST_SIZE, seed=SEED)
        x_train, y_train = split.train.drop(columns=TARGET), split.train[TARGET]
        x_test, y_test = split.test.drop(columns=TARGET), split.test[TARGET]

        model = Ridge(alpha=args.alpha).fit(x_train, y_train)
        mse = float(mean_squared_error(y_test, model.predict(x_test)))
        triptych.log_metric("mse", mse)

        # A skops file, a manifest (signature, pinned requirements, fingerprint) and an
        # input example: load it back with triptych.load_model(f"runs:/{run.run_id}/model").
        triptych.log_model(model, "model", input_example=x_train.head(5))

    # The evaluation gate: registered, and made champion, only when it beats the champion
    # on the same holdout; the decision and its numbers land in the audit trail either way.
    decision = triptych.registry.gate(run.run_id, "diabetes", metric="mse", holdout=split.test)
    print(f"run {run.run_id}  alpha={args.alpha:g}  mse={mse:.1f}")
    print(f"gate: {decision.reason}")
    return mse


if __name__ == "__main__":
    main()
