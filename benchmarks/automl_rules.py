"""Design the final-model rules on development splits, without touching the judged ones.

The benchmark (``benchmarks/automl.py``) judges ``triptych.automl.fit`` on splits
``random_state`` 0-9. Rules are designed here, on other splits (100 and up by default):

    python benchmarks/automl_rules.py search --datasets wine --first-split 100 --splits 30
    python benchmarks/automl_rules.py replay --datasets wine

``search`` runs ``fit`` on each split's training part exactly as the benchmark does (its own
process pinned to one CPU, threads capped, 10 s) and keeps the Optuna study (every trial's
fold scores and out-of-fold predictions) in a SQLite file under ``--dir``. ``replay`` loads
each study, applies :func:`triptych.automl.selection.choose` (the rules of the working tree)
and the variants in :data:`VARIANTS`, refits what each picks on the training part, and prints
the mean test metric per variant next to the baseline's. A search is done once per split;
trying a rule costs refits only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _automl_workers as bench  # benchmarks/: the splits and datasets of the benchmark
from _automl_report import SHORT_NAMES
from automl import worker_env

DEFAULT_DIR = Path("/tmp/automl-dev")


def _study_path(folder: Path, dataset: str, split: int) -> Path:
    return folder / dataset / f"{split}.db"


def search_one(dataset: str, split: int, folder: Path, budget: float, cv: int) -> None:
    """In a worker process: ``fit`` on the training part, the study kept in SQLite."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    path = _study_path(folder, dataset, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    home = folder / "home" / f"{dataset}-{split}"
    os.environ["TRIPTYCH_HOME"] = str(home)
    import triptych.automl

    spec = bench.DATASETS[dataset]
    X_train, _, y_train, _, _ = bench.load_split(dataset, split)
    start = time.perf_counter()
    triptych.automl.fit(
        X_train.assign(target=y_train.to_numpy()),
        "target",
        task=spec.task,
        metric=spec.metrics[0],
        budget_s=budget,
        cv=cv,
        seed=split,
        storage=f"sqlite:///{path}",
        study_name="dev",
        progress=False,
    )
    meta = {"seconds": time.perf_counter() - start, "budget": budget, "cv": cv}
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")


def search(args: argparse.Namespace) -> None:
    for dataset in args.datasets:
        for split in range(args.first_split, args.first_split + args.splits):
            if _study_path(args.dir, dataset, split).with_suffix(".json").exists():
                continue
            print(f"... {dataset} split {split}", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "_one", dataset, str(split), "--dir", str(args.dir)]
            cmd += ["--budget", str(args.budget), "--cv", str(args.cv)]
            proc = subprocess.run(
                cmd, env=worker_env(1), capture_output=True, text=True, check=False
            )
            if proc.returncode:
                print(proc.stderr[-2000:], file=sys.stderr)


# -- replay ---------------------------------------------------------------------------------
class Study:
    """A saved study with the training data, folds and context ``fit`` used."""

    def __init__(self, folder: Path, dataset: str, split: int) -> None:
        import optuna

        from triptych.automl import inputs, space
        from triptych.automl import metrics as metrics_module
        from triptych.automl.search import Data

        spec = bench.DATASETS[dataset]
        meta = json.loads(_study_path(folder, dataset, split).with_suffix(".json").read_text())
        X_train, self.X_test, y_train, self.y_test, _ = bench.load_split(dataset, split)
        train = X_train.assign(target=y_train.to_numpy())
        self.dataset, self.split, self.seconds = dataset, split, meta["seconds"]
        self.metric = metrics_module.get(spec.task, spec.metrics[0])
        prepared = inputs.prepare(train, "target", spec.task, meta["cv"])
        fold = inputs.folds(prepared.y, spec.task, meta["cv"], split)
        import numpy as np

        self.ctx = space.make_context(
            spec.task,
            prepared.numeric,
            prepared.categorical,
            prepared.n_rows,
            prepared.n_rows - int(np.bincount(fold).max()),
            split,
        )
        self.prepared = prepared
        self.data = Data(prepared.X, prepared.y, fold, prepared.classes)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        url = f"sqlite:///{_study_path(folder, dataset, split)}"
        self.trials = optuna.load_study(study_name="dev", storage=url).get_trials()
        self._fitted: dict[Any, Any] = {}

    def test_score(self, choice: Any) -> float:
        """The test metric of what ``choice`` (a :class:`selection.Choice`) builds."""
        from triptych.automl.search import contained

        key = tuple(sorted(choice.members.items()))
        if key not in self._fitted:
            with contained():
                model = choice.build(self.ctx).fit(self.prepared.X, self.prepared.y)
            self._fitted[key] = model
        model = self._fitted[key]
        X = self.X_test
        if self.ctx.task == "regression":
            return self.metric.score(self.y_test.to_numpy(), model.predict(X))
        proba = model.predict_proba(X)
        return self.metric.score(self.y_test.to_numpy(), proba, self.data.classes)


def current(study: Study) -> Any:
    from triptych.automl import selection

    return selection.choose(study.trials, study.ctx, study.data, study.metric)


def baseline(study: Study) -> Any:
    from triptych.automl import selection, space

    return selection.choose(
        [t for t in study.trials if space.is_baseline(t.params)],
        study.ctx,
        study.data,
        study.metric,
    )


def _base_trial(study: Study) -> Any:
    from triptych.automl import space

    return next(
        t for t in study.trials if space.is_baseline(t.params) and t.state.name == "COMPLETE"
    )


def _with_members(choice: Any, members: dict[int, float], study: Study) -> Any:
    from triptych.automl import selection

    params = {t.number: dict(t.params) for t in study.trials}
    return selection.Choice(
        "ensemble" if len(members) > 1 else "single",
        choice.single,
        members,
        params,
        choice.score,
        choice.single_score,
        None,
        choice.best_cv,
    )


def _runner_up_surprise(proba: Any) -> float:
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    second = np.sort(p, axis=1)[:, -2]
    return float(np.mean(-np.log(second)))


def runner_up(study: Study) -> Any:
    import dataclasses

    from triptych.automl import selection

    metric = dataclasses.replace(study.metric, surprise=_runner_up_surprise)
    return selection.choose(study.trials, study.ctx, study.data, metric)


def hedge(study: Study) -> Any:
    choice = current(study)
    base = _base_trial(study)
    if base.number in choice.members and len(choice.members) == 1:
        return choice
    members = {n: w / 2 for n, w in choice.members.items()}
    members[base.number] = members.get(base.number, 0.0) + 0.5
    return _with_members(choice, members, study)


def repeated(study: Study) -> Any:
    """The challenger must displace the baseline on a second fold assignment too."""
    import numpy as np

    from triptych.automl import inputs, selection
    from triptych.automl.search import Data, evaluate

    choice = current(study)
    base = _base_trial(study)
    if base.number in choice.members and len(choice.members) == 1:
        return choice
    fold = inputs.folds(study.data.y, study.ctx.task, len(study.data.splits()), study.split + 7919)
    data = Data(study.data.X, study.data.y, fold, study.data.classes)
    by_number = {t.number: t for t in study.trials}
    oofs = {}
    for n in {*choice.members, base.number}:
        out = evaluate(dict(by_number[n].params), study.ctx, data, study.metric)
        oofs[n] = out.oof
    blended = sum(w * oofs[n] for n, w in choice.members.items())
    if selection.displaces(study.metric, data, oofs[base.number], np.asarray(blended)):
        return choice
    return _with_members(choice, {base.number: 1.0}, study)


VARIANTS: dict[str, Callable[[Study], Any]] = {
    "baseline": baseline,
    "current": current,
    "runner_up": runner_up,
    "hedge": hedge,
    "repeated": repeated,
}


def _name(params: dict[str, Any]) -> str:
    """``svm``, ``logistic+poly2``, ``hgb``: the estimator (short) and its expansion."""
    name = str(SHORT_NAMES.get(params.get("estimator"), params.get("estimator")))
    if params.get("expansion", "none") != "none":
        name += "+" + str(params["expansion"])
    return name


def _describe(choice: Any, study: Study) -> str:
    by_number = {t.number: t for t in study.trials}
    parts = []
    for n, w in choice.members.items():
        name = _name(by_number[n].params)
        parts.append(name if len(choice.members) == 1 else f"{name}:{w:.2f}")
    return "+".join(parts)


def replay(args: argparse.Namespace) -> None:
    names = args.variants or list(VARIANTS)
    for dataset in args.datasets:
        folder = args.dir / dataset
        splits = sorted(int(p.stem) for p in folder.glob("*.json")) if folder.exists() else []
        splits = [s for s in splits if s >= args.first_split]
        scores: dict[str, list[float]] = {n: [] for n in names}
        for split in splits:
            study = Study(args.dir, dataset, split)
            row = []
            for name in names:
                choice = VARIANTS[name](study)
                value = study.test_score(choice)
                scores[name].append(value)
                row.append(f"{name}={value:.4f} ({_describe(choice, study)})")
            if args.per_split:
                print(f"{dataset} {split} [{study.seconds:.1f}s]: " + "  ".join(row))
        base = scores.get("baseline")
        for name in names:
            values = scores[name]
            if not values:
                continue
            line = f"{dataset:14} {name:20} mean {statistics.fmean(values):.5f} (n={len(values)})"
            if base and name != "baseline":
                diffs = [a - b for a, b in zip(values, base, strict=True)]
                se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
                worse = sum(d > 1e-12 for d in diffs)
                better = sum(d < -1e-12 for d in diffs)
                line += f"  vs baseline {statistics.fmean(diffs):+.5f} ± {se:.5f}"
                line += f"  wins/losses {better}/{worse}"
            print(line, flush=True)


def _unpaired_price(study: Study, incumbent: Any, challenger: Any) -> bool:
    """The price before the paired one: each model paid the three unseen rows at its own
    firmest-ruled-out class (mean over rows of -log of its smallest probability)."""
    import numpy as np

    def pessimistic(oof: Any) -> float:
        p = np.clip(np.asarray(oof, dtype=np.float64), 1e-15, 1.0)
        surprise = float(np.mean(-np.log(p.min(axis=1) / p.sum(axis=1))))
        rows = len(study.data.y)
        loss = study.metric.loss(study.data.y, oof, study.data.classes)
        return (rows * loss + 3 * surprise) / (rows + 3)

    return pessimistic(challenger) < pessimistic(incumbent)


def trials(args: argparse.Namespace) -> None:
    """Every distinct complete non-baseline trial against the baseline: which beat it by two
    standard errors on the folds, which of those pass the unpaired and the paired (current)
    price, and how each did against the baseline on the test part."""
    from triptych.automl import ensemble, selection, space
    from triptych.automl.search import OOF_ATTR, contained, decode_oof

    for dataset in args.datasets:
        folder = args.dir / dataset
        splits = sorted(int(p.stem) for p in folder.glob("*.json")) if folder.exists() else []
        counted = 0
        passed: dict[str, list[tuple[int, str, float]]] = {
            "folds": [],
            "unpaired": [],
            "paired": [],
        }
        for split in (s for s in splits if s >= args.first_split):
            study = Study(args.dir, dataset, split)
            base = _base_trial(study)
            rows = len(study.data.y)

            def oof(trial: Any, rows: int = rows, study: Study = study) -> Any:
                return decode_oof(trial.user_attrs[OOF_ATTR], rows, study.ctx.task)

            def test(trial: Any, study: Study = study) -> float:
                with contained():
                    model = space.build(dict(trial.params), study.ctx)
                    model.fit(study.prepared.X, study.prepared.y)
                proba = model.predict_proba(study.X_test)
                return study.metric.score(study.y_test.to_numpy(), proba, study.data.classes)

            seen = {json.dumps(base.params, sort_keys=True)}
            base_oof, base_test = oof(base), None
            base_folds = selection.fold_losses(study.metric, study.data, base_oof)
            for trial in sorted(study.trials, key=lambda t: (t.value is None, t.value)):
                key = json.dumps(trial.params, sort_keys=True)
                if trial.state.name != "COMPLETE" or OOF_ATTR not in trial.user_attrs:
                    continue
                if key in seen:
                    continue
                seen.add(key)
                counted += 1
                challenger = oof(trial)
                folds = selection.fold_losses(study.metric, study.data, challenger)
                if not ensemble.clearly_better(base_folds, folds, selection.UNBOUNDED_ERRORS):
                    continue
                base_test = test(base) if base_test is None else base_test
                entry = (split, _name(trial.params), test(trial) - base_test)
                passed["folds"].append(entry)
                if _unpaired_price(study, base_oof, challenger):
                    passed["unpaired"].append(entry)
                if selection.displaces(study.metric, study.data, base_oof, challenger):
                    passed["paired"].append(entry)
        print(f"{dataset}: {counted} distinct complete non-baseline trials")
        for name, entries in passed.items():
            diffs = [d for _, _, d in entries]
            label = "" if name == "folds" else f" and pass the {name} price"
            line = f"  beat the baseline by 2 SE on the folds{label}: {len(entries)}"
            if diffs:
                worse, better = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
                line += f"; test minus baseline: mean {statistics.fmean(diffs):+.4f}"
                line += f", worse {worse}, better {better}, worst {max(diffs):+.4f}"
            print(line)
            if name != "folds" and len(entries) <= 10:
                for split, what, d in entries:
                    print(f"    split {split} {what}: {d:+.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("search", "replay", "trials"):
        p = sub.add_parser(name)
        p.add_argument("--datasets", default="wine", type=lambda s: s.split(","))
        p.add_argument("--first-split", type=int, default=100)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
        if name == "search":
            p.add_argument("--splits", type=int, default=30)
            p.add_argument("--budget", type=float, default=10.0)
            p.add_argument("--cv", type=int, default=5)
        elif name == "replay":
            p.add_argument("--variants", type=lambda s: s.split(","))
            p.add_argument("--per-split", action="store_true")
    one = sub.add_parser("_one")
    one.add_argument("dataset")
    one.add_argument("split", type=int)
    one.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    one.add_argument("--budget", type=float, default=10.0)
    one.add_argument("--cv", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "_one":
        search_one(args.dataset, args.split, args.dir, args.budget, args.cv)
    elif args.command == "search":
        if args.first_split < 10:
            parser.error("splits 0-9 are the benchmark's: design on others (100 and up)")
        search(args)
    elif args.command == "trials":
        trials(args)
    else:
        replay(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
