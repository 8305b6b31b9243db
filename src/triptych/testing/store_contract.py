"""The metadata store contract suite: every backend must pass every test here.

Use it by subclassing :class:`StoreContract` in a test module and providing a ``store`` fixture
that yields a fresh, empty :class:`~triptych.store.base.MetadataStore`::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            yield MyStore(...)
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from triptych.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from triptych.store.base import MetadataStore, now_ms
from triptych.store.entities import (
    ArtifactEntry,
    CodeState,
    DataInput,
    Environment,
    Lifecycle,
    Metric,
    RunSpec,
    RunStatus,
)
from triptych.testing.deployment_contract import DeploymentContract
from triptych.testing.monitoring_contract import MonitoringContract
from triptych.testing.registry_contract import RegistryContract
from triptych.testing.schedule_contract import ScheduleContract

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def _run(store: MetadataStore, experiment_id: str, **kw: Any) -> str:
    return store.create_run(RunSpec(experiment_id, **kw)).run_id


class StoreContract(DeploymentContract, MonitoringContract, RegistryContract, ScheduleContract):
    """Behaviour every metadata store guarantees (see ``triptych.store.base``)."""

    store: MetadataStore

    @pytest.fixture
    def exp(self, store: MetadataStore) -> str:
        return store.create_experiment("contract")

    # -- experiments ------------------------------------------------------------------------
    def test_create_and_get_experiment(self, store: MetadataStore) -> None:
        eid = store.create_experiment("first", tags={"team": "ds"})
        got = store.get_experiment(eid)
        assert (got.name, got.lifecycle, dict(got.tags)) == (
            "first",
            Lifecycle.ACTIVE,
            {"team": "ds"},
        )
        assert store.get_experiment_by_name("first") == got
        assert store.get_experiment_by_name("nope") is None

    def test_duplicate_experiment_name_is_refused(self, store: MetadataStore) -> None:
        store.create_experiment("dup")
        with pytest.raises(AlreadyExists, match="dup"):
            store.create_experiment("dup")
        assert [e.name for e in store.list_experiments()] == ["dup"]

    def test_missing_experiment_raises_not_found(self, store: MetadataStore) -> None:
        for bad in ("999999", "not-a-number", "9" * 30, "-5"):
            with pytest.raises(NotFound):
                store.get_experiment(bad)

    def test_invalid_experiment_name_writes_nothing(self, store: MetadataStore) -> None:
        for bad in ("", "   ", "x" * 300):
            with pytest.raises(InvalidInput):
                store.create_experiment(bad)
        assert store.list_experiments(include_deleted=True) == []

    def test_rename_delete_restore_experiment(self, store: MetadataStore) -> None:
        eid = store.create_experiment("old")
        other = store.create_experiment("taken")
        store.rename_experiment(eid, "new")
        assert store.get_experiment(eid).name == "new"
        with pytest.raises(AlreadyExists):
            store.rename_experiment(eid, "taken")
        store.set_experiment_lifecycle(eid, deleted=True)
        assert [e.experiment_id for e in store.list_experiments()] == [other]
        assert {e.experiment_id for e in store.list_experiments(include_deleted=True)} == {
            eid,
            other,
        }
        with pytest.raises(Conflict, match="deleted"):
            store.create_run(RunSpec(eid))
        store.set_experiment_lifecycle(eid, deleted=False)
        assert store.get_experiment(eid).lifecycle is Lifecycle.ACTIVE

    def test_experiment_tags_change_after_creation(self, store: MetadataStore) -> None:
        eid = store.create_experiment("tagged", tags={"team": "ds"})
        store.set_experiment_tags(eid, {"team": "ml", "goal": "churn"})
        assert dict(store.get_experiment(eid).tags) == {"team": "ml", "goal": "churn"}
        store.delete_experiment_tag(eid, "team")
        assert dict(store.get_experiment(eid).tags) == {"goal": "churn"}
        with pytest.raises(NotFound, match="no tag"):
            store.delete_experiment_tag(eid, "team")
        for bad in ("999999", "not-a-number", "9" * 30):
            with pytest.raises(NotFound):
                store.set_experiment_tags(bad, {"a": "1"})
            with pytest.raises(NotFound):
                store.delete_experiment_tag(bad, "goal")
        with pytest.raises(InvalidInput):
            store.set_experiment_tags(eid, {"ok": "1", "../bad": "2"})
        assert dict(store.get_experiment(eid).tags) == {"goal": "churn"}  # nothing written

    def test_get_or_create_experiment_is_race_free(self, store: MetadataStore) -> None:
        ids: list[str] = []
        barrier = threading.Barrier(6)

        def worker() -> None:
            barrier.wait()
            ids.append(store.get_or_create_experiment("raced").experiment_id)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == 6 and len(set(ids)) == 1
        assert [e.name for e in store.list_experiments()] == ["raced"]

    # -- runs -------------------------------------------------------------------------------
    def test_create_run_records_everything_at_once(self, store: MetadataStore, exp: str) -> None:
        env = Environment("e" * 64, "3.11.7", "Linux-x86_64", {"numpy": "2.0.0"})
        store.put_environment(env)
        code = CodeState("c0ffee", "main", "git@host:x.git", "train.py", None, "d" * 64)
        run = store.create_run(
            RunSpec(
                exp,
                name="ridge",
                user="ana",
                tags={"stage": "dev"},
                params={"alpha": "0.5"},
                code=code,
                env_digest=env.digest,
                fingerprint="f" * 64,
            )
        )
        got = store.get_run(run.run_id)
        assert got.status is RunStatus.RUNNING and got.end_time is None
        assert (got.name, got.user, got.experiment_id) == ("ridge", "ana", exp)
        assert dict(got.params) == {"alpha": "0.5"} and dict(got.tags) == {"stage": "dev"}
        assert got.fingerprint is not None
        assert got.fingerprint.code == code
        assert got.fingerprint.env_digest == env.digest
        assert got.fingerprint.digest == "f" * 64
        assert len(run.run_id) == 32

    def test_create_run_with_an_unstored_environment_is_not_found(
        self, store: MetadataStore, exp: str
    ) -> None:
        """Found by the API gauntlet's stateful pass: on SQLite this was a 409 "run already
        exists or violates a constraint" (the foreign key error names no column)."""
        for digest in ("a" * 64, ""):
            with pytest.raises(NotFound, match="environment"):
                store.create_run(RunSpec(exp, env_digest=digest))
        assert store.search_runs([exp]).items == []

    def test_create_run_with_initial_artifacts(self, store: MetadataStore, exp: str) -> None:
        entry = ArtifactEntry("_triptych/code.diff", DIGEST_A, 42)
        rid = store.create_run(RunSpec(exp, artifacts=(entry,))).run_id
        assert store.walk_artifacts(rid) == [entry]
        with pytest.raises(Conflict):
            store.create_run(
                RunSpec(exp, artifacts=(entry, ArtifactEntry("_triptych", DIGEST_B, 1)))
            )

    def test_run_ids_are_unique(self, store: MetadataStore, exp: str) -> None:
        ids = {_run(store, exp) for _ in range(50)}
        assert len(ids) == 50

    def test_missing_run_raises_not_found(self, store: MetadataStore, exp: str) -> None:
        with pytest.raises(NotFound):
            store.get_run("0" * 32)
        with pytest.raises(NotFound):
            store.log_batch("0" * 32, [Metric("m", 1.0)])
        with pytest.raises(NotFound):
            store.update_run("0" * 32, status=RunStatus.FINISHED)
        with pytest.raises(NotFound):
            store.create_run(RunSpec(exp, parent_run_id="0" * 32))
        with pytest.raises(NotFound):
            store.create_run(RunSpec("424242"))

    def test_nested_runs_point_at_their_parent(self, store: MetadataStore, exp: str) -> None:
        parent = _run(store, exp)
        child = _run(store, exp, parent_run_id=parent)
        assert store.get_run(child).parent_run_id == parent
        assert store.get_run(parent).parent_run_id is None

    def test_terminal_status_sets_end_time(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        store.update_run(rid, status=RunStatus.FAILED)
        run = store.get_run(rid)
        assert run.status is RunStatus.FAILED and run.end_time is not None
        assert run.end_time >= run.start_time
        store.update_run(rid, status=RunStatus.RUNNING)  # resumed
        assert store.get_run(rid).end_time is None

    def test_finish_run_writes_last_batch_and_status(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp, params={"alpha": "0.5"})
        store.finish_run(
            rid,
            RunStatus.FINISHED,
            metrics=[Metric("mse", 3299.0)],
            params={"n": "3"},
            tags={"t": "x"},
        )
        run = store.get_run(rid)
        assert run.status is RunStatus.FINISHED and run.end_time is not None
        assert (run.metrics["mse"], run.params["n"], run.tags["t"]) == (3299.0, "3", "x")
        other = _run(store, exp, params={"alpha": "0.5"})
        with pytest.raises(Conflict):
            store.finish_run(other, RunStatus.FINISHED, params={"alpha": "1.0"})
        assert store.get_run(other).status is RunStatus.RUNNING  # nothing written
        with pytest.raises(NotFound):
            store.finish_run("0" * 32, RunStatus.FINISHED)

    def test_heartbeat_and_stale_runs(self, store: MetadataStore, exp: str) -> None:
        t0 = now_ms()
        alive = store.create_run(RunSpec(exp, start_time=t0, heartbeat_timeout=5)).run_id
        dead = store.create_run(RunSpec(exp, start_time=t0, heartbeat_timeout=5)).run_id
        done = store.create_run(RunSpec(exp, start_time=t0, heartbeat_timeout=5)).run_id
        store.update_run(done, status=RunStatus.FINISHED)
        store.heartbeat([alive], at=t0 + 4_000)
        assert store.fail_stale_runs(at=t0 + 3_000) == []
        assert store.fail_stale_runs(at=t0 + 6_000) == [dead]
        assert store.fail_stale_runs(at=t0 + 6_000) == []  # each run is failed once
        got = store.get_run(dead)
        assert got.status is RunStatus.FAILED
        assert "heartbeat" in got.tags["triptych.status_reason"]
        assert store.get_run(alive).status is RunStatus.RUNNING
        assert store.get_run(done).status is RunStatus.FINISHED
        store.heartbeat([dead], at=t0 + 9_000)  # finished runs ignore heartbeats
        assert store.get_run(dead).status is RunStatus.FAILED

    def test_delete_and_restore_run(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        store.set_run_lifecycle(rid, deleted=True)
        assert store.get_run(rid).lifecycle is Lifecycle.DELETED
        assert store.search_runs([exp]).items == []
        assert [r.run_id for r in store.search_runs([exp], include_deleted=True).items] == [rid]
        store.set_run_lifecycle(rid, deleted=False)
        assert [r.run_id for r in store.search_runs([exp]).items] == [rid]

    # -- logging ----------------------------------------------------------------------------
    def test_latest_metric_is_highest_step(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        t = now_ms()
        store.log_batch(rid, [Metric("loss", 0.5, 2, t), Metric("loss", 0.9, 0, t)])
        store.log_batch(rid, [Metric("loss", 0.7, 1, t + 5)])
        assert store.get_run(rid).metrics["loss"] == 0.5
        store.log_batch(rid, [Metric("loss", 0.1, 2, t + 10)])  # same step, later: wins
        assert store.get_run(rid).metrics["loss"] == 0.1
        history = store.get_metric_history(rid, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.7), (2, 0.5), (2, 0.1)]
        assert store.get_metric_history(rid, "unknown") == []

    def test_special_float_values_round_trip(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        values = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-300, 1e300]
        store.log_batch(rid, [Metric("x", v, i, now_ms()) for i, v in enumerate(values)])
        got = [m.value for m in store.get_metric_history(rid, "x")]
        assert math.isnan(got[0]) and got[1:] == values[1:]

    def test_param_values_are_immutable(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        store.log_batch(rid, params={"alpha": "0.5"})
        store.log_batch(rid, params={"alpha": "0.5"})  # same value: fine
        with pytest.raises(Conflict, match="alpha"):
            store.log_batch(rid, [Metric("m", 1.0)], params={"alpha": "1.0", "new": "x"})
        run = store.get_run(rid)  # the failed batch wrote nothing at all
        assert dict(run.params) == {"alpha": "0.5"} and dict(run.metrics) == {}

    def test_a_run_tag_is_deleted(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp, tags={"a": "1", "b": "2"})
        store.delete_run_tag(rid, "a")
        assert dict(store.get_run(rid).tags) == {"b": "2"}
        assert store.search_runs([exp], "tags.a = '1'").items == []
        with pytest.raises(NotFound, match="no tag"):
            store.delete_run_tag(rid, "a")
        with pytest.raises(NotFound):
            store.delete_run_tag("0" * 32, "b")
        store.log_batch(rid, tags={"a": "3"})  # set again after deletion
        assert dict(store.get_run(rid).tags) == {"a": "3", "b": "2"}

    def test_tags_are_overwritten(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp, tags={"note": "a"})
        store.log_batch(rid, tags={"note": "b", "other": "c"})
        assert dict(store.get_run(rid).tags) == {"note": "b", "other": "c"}

    @pytest.mark.parametrize(
        "batch",
        [
            {"metrics": [Metric("bad key!", 1.0)]},
            {"metrics": [Metric("../escape", 1.0)]},
            {"metrics": [Metric("m", "not a number")]},  # type: ignore[arg-type]
            {"params": {"": "x"}},
            {"params": {"p": "x" * 7000}},
            {"tags": {"t" * 300: "x"}},
        ],
    )
    def test_invalid_batch_writes_nothing(
        self, store: MetadataStore, exp: str, batch: dict[str, Any]
    ) -> None:
        rid = _run(store, exp)
        good = [Metric("good", 1.0)]
        with pytest.raises(InvalidInput):
            store.log_batch(
                rid, good + batch.get("metrics", []), batch.get("params"), batch.get("tags")
            )
        run = store.get_run(rid)
        assert (dict(run.metrics), dict(run.params), dict(run.tags)) == ({}, {}, {})

    def test_concurrent_batches_lose_nothing(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)

        def worker(w: int) -> None:
            for b in range(10):
                store.log_batch(rid, [Metric(f"w{w}", float(i), b * 20 + i) for i in range(20)])

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in range(6):
            assert len(store.get_metric_history(rid, f"w{w}")) == 200

    # -- search -----------------------------------------------------------------------------
    @pytest.fixture
    def grid(self, store: MetadataStore, exp: str) -> dict[str, str]:
        """Five runs: alpha 0.1..0.5, mse falling with alpha; one without mse."""
        ids = {}
        for i, alpha in enumerate(["0.1", "0.2", "0.3", "0.4", "0.5"]):
            rid = _run(
                store, exp, name=f"ridge-{alpha}", start_time=now_ms() + i, params={"alpha": alpha}
            )
            if alpha != "0.3":
                store.log_batch(
                    rid, [Metric("mse", 4000 - 200 * i)], tags={"team": "a" if i % 2 else "b"}
                )
            ids[alpha] = rid
        store.update_run(ids["0.5"], status=RunStatus.FINISHED)
        return ids

    def _ids(self, store: MetadataStore, exp: str, flt: str = "", order: Any = ()) -> list[str]:
        return [r.params["alpha"] for r in store.search_runs([exp], flt, list(order)).items]

    def test_search_default_order_is_newest_first(self, store, exp, grid) -> None:
        assert self._ids(store, exp) == ["0.5", "0.4", "0.3", "0.2", "0.1"]

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            ("metrics.mse < 3500", {"0.4", "0.5"}),
            ("metrics.mse >= 3600 and metrics.mse <= 4000", {"0.1", "0.2"}),
            ("metrics.mse != 3800", {"0.1", "0.4", "0.5"}),
            ("params.alpha = '0.3'", {"0.3"}),
            ("params.alpha IN ('0.1', '0.5')", {"0.1", "0.5"}),
            ("params.alpha NOT IN ('0.1', '0.5')", {"0.2", "0.3", "0.4"}),
            ("params.alpha LIKE '0.%' and tags.team = 'a'", {"0.2", "0.4"}),
            ("tags.team != 'a'", {"0.1", "0.5"}),
            ("status = 'FINISHED'", {"0.5"}),
            ("attributes.status = 'running'", {"0.1", "0.2", "0.3", "0.4"}),
            ("name LIKE 'ridge-0.1%'", {"0.1"}),
            ("name ILIKE 'RIDGE-0.2'", {"0.2"}),
            ("name LIKE 'RIDGE%'", set()),
            ("metrics.missing > 0", set()),
        ],
    )
    def test_search_filters(self, store, exp, grid, flt, expected) -> None:
        assert set(self._ids(store, exp, flt)) == expected

    def test_search_by_run_id(self, store, exp, grid) -> None:
        rid = grid["0.2"]
        assert self._ids(store, exp, f"run_id = '{rid}'") == ["0.2"]

    def test_search_orders_by_metric_with_missing_last(self, store, exp, grid) -> None:
        assert self._ids(store, exp, order=["metrics.mse"]) == ["0.5", "0.4", "0.2", "0.1", "0.3"]
        assert self._ids(store, exp, order=["metrics.mse DESC"]) == [
            "0.1",
            "0.2",
            "0.4",
            "0.5",
            "0.3",
        ]
        assert self._ids(store, exp, order=["params.alpha ASC"]) == [
            "0.1",
            "0.2",
            "0.3",
            "0.4",
            "0.5",
        ]
        assert self._ids(store, exp, order=["start_time ASC"]) == [
            "0.1",
            "0.2",
            "0.3",
            "0.4",
            "0.5",
        ]

    def test_search_pages_cover_everything_once(self, store, exp, grid) -> None:
        seen: list[str] = []
        token = None
        while True:
            page = store.search_runs(
                [exp], order_by=["metrics.mse"], max_results=2, page_token=token
            )
            assert len(page.items) <= 2
            seen += [r.run_id for r in page.items]
            token = page.next_page_token
            if token is None:
                break
        assert sorted(seen) == sorted(grid.values())

    def test_search_ignores_other_experiments(self, store, exp, grid) -> None:
        other = store.create_experiment("other")
        _run(store, other)
        assert len(store.search_runs([exp]).items) == 5
        assert len(store.search_runs([exp, other]).items) == 6
        assert store.search_runs(["12345"]).items == []

    @pytest.mark.parametrize(
        "flt",
        [
            "metrics.mse <",
            "metrics.mse < 'text'",
            "params.alpha < '0.3'",
            "bogus.key = 1",
            "nosuchattr = 'x'",
            "metrics.mse < 3 or metrics.mse > 4",
            "params.alpha = '0.3' and",
            "metrics.mse ~ 3",
        ],
    )
    def test_bad_filters_are_clear_errors(self, store, exp, flt) -> None:
        with pytest.raises(InvalidInput):
            store.search_runs([exp], flt)

    def test_bad_paging_arguments(self, store, exp) -> None:
        with pytest.raises(InvalidInput):
            store.search_runs([exp], max_results=0)
        with pytest.raises(InvalidInput):
            store.search_runs([exp], page_token="garbage!")
        with pytest.raises(InvalidInput):
            store.search_runs([exp], order_by=["metrics.mse SIDEWAYS extra"])

    # -- the triptych -----------------------------------------------------------------------
    def test_environment_is_stored_once(self, store: MetadataStore) -> None:
        env = Environment("1" * 64, "3.11.7", "Linux", {"a": "1", "b": "2"})
        store.put_environment(env)
        store.put_environment(env)
        assert store.get_environment(env.digest) == env
        with pytest.raises(NotFound):
            store.get_environment("2" * 64)

    def test_inputs_are_recorded_once(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        item = DataInput("train", DIGEST_A, rows=353, schema={"age": "float64"}, source="x.csv")
        store.log_inputs(rid, [item, item])
        store.log_inputs(rid, [item, DataInput("test", DIGEST_B)])
        assert store.get_run(rid).inputs == (DataInput("test", DIGEST_B), item)

    # -- artifacts --------------------------------------------------------------------------
    def test_artifact_tree(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        store.record_artifacts(
            rid,
            [
                ArtifactEntry("model/model.skops", DIGEST_A, 10),
                ArtifactEntry("model/meta/manifest.json", DIGEST_B, 2),
                ArtifactEntry("notes.txt", DIGEST_B, 2),
            ],
        )
        assert store.list_artifacts(rid) == [
            ArtifactEntry("model", is_dir=True),
            ArtifactEntry("notes.txt", DIGEST_B, 2),
        ]
        assert store.list_artifacts(rid, "model") == [
            ArtifactEntry("model/meta", is_dir=True),
            ArtifactEntry("model/model.skops", DIGEST_A, 10),
        ]
        assert [a.path for a in store.walk_artifacts(rid, "model")] == [
            "model/meta/manifest.json",
            "model/model.skops",
        ]
        assert store.get_artifact(rid, "notes.txt").digest == DIGEST_B
        with pytest.raises(NotFound):
            store.get_artifact(rid, "model")  # a folder is not a file
        store.record_artifacts(rid, [ArtifactEntry("notes.txt", DIGEST_A, 10)])  # overwrite
        assert store.get_artifact(rid, "notes.txt").digest == DIGEST_A

    def test_artifact_path_is_file_or_folder(self, store: MetadataStore, exp: str) -> None:
        rid = _run(store, exp)
        store.record_artifacts(rid, [ArtifactEntry("a/b", DIGEST_A, 1)])
        for clash in ("a", "a/b/c"):
            with pytest.raises(Conflict):
                store.record_artifacts(rid, [ArtifactEntry(clash, DIGEST_B, 1)])
        with pytest.raises(Conflict):
            store.record_artifacts(
                rid, [ArtifactEntry("x", DIGEST_A, 1), ArtifactEntry("x/y", DIGEST_B, 1)]
            )
        assert [a.path for a in store.walk_artifacts(rid)] == ["a/b"]

    def test_folder_listing_is_exact_under_any_collation(
        self, store: MetadataStore, exp: str
    ) -> None:
        """Siblings that sort between 'a/' and 'a0' under some collations stay outside 'a'."""
        rid = _run(store, exp)
        names = ["a/b.txt", "a+b.txt", "a~c.txt", "a-b", "a.txt", "ab/c", "a b/d"]
        store.record_artifacts(rid, [ArtifactEntry(n, DIGEST_A, 1) for n in names])
        assert [e.path for e in store.list_artifacts(rid, "a")] == ["a/b.txt"]
        assert [e.path for e in store.walk_artifacts(rid, "a")] == ["a/b.txt"]
        assert [e.path for e in store.walk_artifacts(rid)] == sorted(names)
        store.record_artifacts(rid, [ArtifactEntry("m", DIGEST_A, 1)])  # no false clash
        with pytest.raises(Conflict, match=r"'a/b\.txt'"):  # names the clashing file
            store.record_artifacts(rid, [ArtifactEntry("a", DIGEST_B, 1)])

    def test_operations_take_milliseconds(self, store: MetadataStore, exp: str) -> None:
        """Not a benchmark: a guard that nothing sleeps or scans on the hot paths."""
        rid = _run(store, exp)
        start = time.perf_counter()
        store.log_batch(rid, [Metric("m", float(i), i) for i in range(2000)])
        store.get_run(rid)
        assert time.perf_counter() - start < 5
