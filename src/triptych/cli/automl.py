"""``triptych automl``: the AutoML search from the command line (logic in triptych.automl)."""

from __future__ import annotations

from typing import Any

import typer

TOP = 10  # leaderboard rows printed


def automl(
    data: str = typer.Option(
        ..., "--data", "-d", help="datasets:/NAME@VERSION, or a CSV/Parquet file."
    ),
    target: str = typer.Option(..., "--target", "-t", help="The column to predict."),
    task: str = typer.Option("regression", "--task", help="regression or classification."),
    budget: float = typer.Option(
        60.0, "--budget", help="Seconds for the search and the final refit."
    ),
    metric: str = typer.Option(
        None,
        "--metric",
        "-m",
        help="mse, rmse, mae, r2 | accuracy, balanced_accuracy, f1, log_loss, roc_auc "
        "(default: mse / accuracy).",
    ),
    cv: int = typer.Option(5, "--cv", help="Cross-validation folds."),
    trials: int = typer.Option(
        None, "--trials", "-n", help="Stop after this many trials in the study."
    ),
    executor: str = typer.Option("local", "--executor", help="local, ray, or ray://host:port."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Trials in parallel."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds, the sampler and the models."),
    storage: str = typer.Option(
        None,
        "--storage",
        help="Where the study lives: 'auto' (next to the triptych store) or a database URL; "
        "a stored study continues when run again.",
    ),
    study: str = typer.Option(None, "--study", help="Study name (default: from data + settings)."),
    experiment: str = typer.Option(None, "--experiment", "-e", help="Experiment of the run."),
    test: str = typer.Option(
        None, "--test", help="A held-out set (same forms as --data), scored after the search."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search preprocessing x estimators for TARGET; print the leaderboard and the model.

    The baseline (a scaled, regularised linear model) is trial 0; the final model is the
    greedy ensemble of the trials' out-of-fold predictions when it beats the single model
    chosen by the one-standard-error rule, else that model."""
    from triptych.automl import fit
    from triptych.cli import output

    result = fit(
        data,
        target,
        task=task,
        metric=metric,
        budget_s=budget,
        n_trials=trials,
        cv=cv,
        executor=executor,
        seed=seed,
        storage=storage,
        study_name=study,
        n_jobs=jobs,
        experiment=experiment,
        test=test,
        progress=None,  # a bar when stderr is a terminal (stdout stays clean for --json)
    )
    if json_out:
        output.print_json(output.clean_floats(result.to_dict(top=None)))
        return
    _print(result)


def _print(result: Any) -> None:
    import math

    from rich.table import Table

    from triptych.cli import output

    console = output.console()
    board = result.leaderboard
    table = Table(
        title=f"leaderboard (top {min(TOP, len(board))} of {len(board)} trials, "
        f"{result.metric}, {'lower' if result.direction == 'minimize' else 'higher'} is better)",
        title_justify="left",
        title_style="bold",
    )
    for name, justify in (
        ("#", "right"),
        ("estimator", "left"),
        ("preprocessing", "left"),
        ("params", "left"),
        ("cv mean", "right"),
        ("± std", "right"),
        ("seconds", "right"),
        ("state", "left"),
        ("weight", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in board.head(TOP).to_dict(orient="records"):
        params = ", ".join(f"{k.split('.', 1)[-1]}={_short(v)}" for k, v in row["params"].items())
        weight = row["weight"]
        table.add_row(
            str(row["number"]),
            output.escape(str(row["estimator"])),
            output.escape(str(row["preprocessing"])),
            output.escape(params or "-"),
            _number(row["cv_mean"]),
            _number(row["cv_std"]),
            "-" if math.isnan(row["duration"]) else f"{row['duration']:.2f}",
            _state(row["state"]),
            f"{weight:.2f}" if weight else "",
        )
    console.print(table)
    if result.kind == "ensemble":
        parts = ", ".join(f"trial {n} x{w:.2f}" for n, w in result.members.items())
        chosen = f"ensemble of {len(result.members)}: {parts}"
    else:
        best = result.best
        chosen = f"trial {best['number']}: {best['estimator']} ({best['preprocessing']})"
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("model", output.escape(chosen))
    head.add_row(
        f"cv {result.metric}",
        f"{output.number(result.cv_score)} [dim](out-of-fold on the training data)[/]",
    )
    if result.test_score is not None:
        head.add_row(f"test {result.metric}", output.number(result.test_score))
    head.add_row("run", result.run_id)
    head.add_row("model uri", result.model_uri)
    head.add_row("study", output.escape(result.study_name))
    console.print(head)


def _number(value: float) -> str:
    from triptych.cli import output

    return "-" if value != value else output.number(value)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _state(state: str) -> str:
    style = {"complete": "green", "pruned": "yellow", "failed": "red"}.get(state, "white")
    return f"[{style}]{state}[/]"
