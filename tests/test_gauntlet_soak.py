"""Soak gauntlet: 16 concurrent clients against a real ``triptych server`` process (and a
served model whose prediction log goes through it), on SQLite and on PostgreSQL, shortened for
CI; ``benchmarks/soak.py`` runs the same workload for 60 s. No error may reach a client, no
acknowledged row may be missing when the store is read afterwards, and the versions the
clients registered concurrently on the same model names must be 1..n, each given once."""

from __future__ import annotations

from pathlib import Path

import pytest

from triptych.testing import soak

SECONDS = 8.0
CLIENTS = 16


def _check(result: soak.Result, gauntlet: dict[str, int]) -> None:
    gauntlet["soak requests"] = gauntlet.get("soak requests", 0) + result.requests
    gauntlet["rows lost"] = gauntlet.get("rows lost", 0) + result.lost
    counts = {name: (c.expected, c.found) for name, c in result.counts.items()}
    print(f"{result.backend}: {result.requests} requests, {result.retries} retries, {counts}")
    assert result.errors == []
    assert result.problems == []
    assert {name: c.lost for name, c in result.counts.items() if c.lost} == {}
    assert result.retries >= 0  # the server wrote its count when it stopped
    # every kind of write happened, so a zero above is not a workload that did nothing
    assert all(c.expected > 0 for c in result.counts.values()), counts


@pytest.mark.slow
def test_soak_on_sqlite(tmp_path: Path, gauntlet: dict[str, int]) -> None:
    url = f"sqlite:///{tmp_path / 'soak.db'}"
    _check(soak.soak("sqlite", url, tmp_path / "soak", seconds=SECONDS, clients=CLIENTS), gauntlet)


@pytest.mark.slow
def test_soak_on_postgres(postgres_url: str, tmp_path: Path, gauntlet: dict[str, int]) -> None:
    _check(
        soak.soak("postgres", postgres_url, tmp_path / "soak", seconds=SECONDS, clients=CLIENTS),
        gauntlet,
    )


# -- what the soak found ------------------------------------------------------------------------
def test_concurrent_batches_on_one_run_take_their_row_locks_in_one_order(
    postgres_url: str,
) -> None:
    """Clients logging the same metric keys and tags to one run (a sweep's parent), each in its
    own order, used to deadlock on PostgreSQL: every upsert locked its rows in the order given,
    so two batches could each hold a row the other wanted. Rows are now written in key order:
    no deadlock, so nothing for the retry loop to do."""
    import threading

    from triptych.store.entities import Metric, RunSpec
    from triptych.store.sql import engine
    from triptych.store.sql.store import SqlStore

    store = SqlStore(postgres_url)
    try:
        run_id = store.create_run(RunSpec(store.get_or_create_experiment("e").experiment_id)).run_id
        keys = [f"k{i}" for i in range(8)]
        BATCHES = 10
        before = engine.retries()
        failures: list[BaseException] = []

        def client(n: int) -> None:
            order = keys if n % 2 else keys[::-1]
            try:
                for i in range(BATCHES):
                    metrics = [Metric(k, float(i), n * 1000 + i, 0) for k in order]
                    store.log_batch(run_id, metrics, tags={k: str(n) for k in order})
            except BaseException as e:  # reported below
                failures.append(e)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert engine.retries() - before == 0
        assert all(len(store.get_metric_history(run_id, k)) == 8 * BATCHES for k in keys)
    finally:
        store.close()


def test_the_retry_count_counts_each_retried_transient_error() -> None:
    """What the soak reports as "retries": ``with_retry`` counts each transient error it
    retries, and not the call that finally succeeds."""
    from sqlalchemy.exc import OperationalError

    from triptych.store.sql import engine

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return "written"

    before = engine.retries()
    assert engine.with_retry(flaky, "a test write") == "written"
    assert engine.retries() - before == 2
