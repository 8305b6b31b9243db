"""The schedule half of the store contract: schedules, exactly-once firings, trigger events.

:class:`~triptych.testing.store_contract.StoreContract` inherits these tests, so every backend
runs them; they need the same ``store`` fixture (a fresh, empty store).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from triptych.errors import AlreadyExists, InvalidInput, NotFound
from triptych.store.base import MetadataStore
from triptych.store.entities import Schedule, ScheduleSpec


def schedule_spec(name: str = "nightly", **kw: Any) -> ScheduleSpec:
    """A valid cron schedule spec; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "pipeline": "/project/pipeline.py",
        "workdir": "/project",
        "kind": "cron",
        "spec": "0 3 * * *",
        "params": {"alpha": "0.5"},
        "executor": "local",
        "created_by": "ana",
    }
    fields.update(kw)
    return ScheduleSpec(name=name, **fields)


class ScheduleContract:
    """Behaviour every metadata store guarantees for schedules (see ``triptych.store.base``)."""

    def test_create_get_list_delete_schedule(self, store: MetadataStore) -> None:
        made = store.create_schedule(schedule_spec(params={"alpha": 0.5, "n": 3}))
        assert isinstance(made, Schedule)
        assert (made.name, made.kind, made.spec, made.enabled, made.created_by) == (
            "nightly", "cron", "0 3 * * *", True, "ana",
        )  # fmt: skip
        assert dict(made.params) == {"alpha": "0.5", "n": "3"}  # params are strings
        assert made.active_since == made.created_at and made.last_firing is None
        assert store.get_schedule("nightly") == made
        store.create_schedule(schedule_spec("on-data", kind="dataset", spec="diabetes"))
        store.create_schedule(schedule_spec("any-alert", kind="alert", spec="*"))
        assert [s.name for s in store.list_schedules()] == ["any-alert", "nightly", "on-data"]
        store.delete_schedule("nightly")
        assert [s.name for s in store.list_schedules()] == ["any-alert", "on-data"]
        with pytest.raises(NotFound, match="nightly"):
            store.get_schedule("nightly")

    def test_duplicate_schedule_name_is_refused(self, store: MetadataStore) -> None:
        store.create_schedule(schedule_spec())
        with pytest.raises(AlreadyExists, match="nightly"):
            store.create_schedule(schedule_spec(spec="0 4 * * *"))
        assert [s.spec for s in store.list_schedules()] == ["0 3 * * *"]

    @pytest.mark.parametrize(
        "bad",
        [
            {"name": "has space"},
            {"name": "../x"},
            {"name": ""},
            {"kind": "weekly"},
            {"kind": "dataset", "spec": "a/b"},
            {"kind": "alert", "spec": "bad\nname"},
            {"spec": "   "},
            {"pipeline": ""},
            {"workdir": ""},
            {"executor": ""},
            {"params": {"bad key!": "1"}},
        ],
    )
    def test_invalid_schedule_writes_nothing(
        self, store: MetadataStore, bad: dict[str, Any]
    ) -> None:
        fields = dict(bad)
        with pytest.raises(InvalidInput):
            store.create_schedule(schedule_spec(fields.pop("name", "nightly"), **fields))
        assert store.list_schedules() == []

    def test_unknown_schedule_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.get_schedule("nope")
        with pytest.raises(NotFound):
            store.delete_schedule("nope")
        with pytest.raises(NotFound):
            store.set_schedule_enabled("nope", False)
        with pytest.raises(NotFound):
            store.list_firings("nope")
        with pytest.raises(NotFound):
            store.claim_firing(987654, "2026-01-01T03:00:00Z")

    def test_claim_is_won_once_per_occurrence(self, store: MetadataStore) -> None:
        a = store.create_schedule(schedule_spec("a"))
        b = store.create_schedule(schedule_spec("b"))
        assert store.claim_firing(a.schedule_id, "t1", at=1000, fired_by="host:1") is True
        assert store.claim_firing(a.schedule_id, "t1", fired_by="host:2") is False
        assert store.claim_firing(a.schedule_id, "t2") is True  # another occurrence
        assert store.claim_firing(b.schedule_id, "t1") is True  # another schedule
        firings = store.list_firings("a")
        assert [(f.occurrence, f.status) for f in firings] == [("t2", "RUNNING"), ("t1", "RUNNING")]
        assert (firings[1].fired_at, firings[1].fired_by) == (1000, "host:1")  # the winner's

    def test_many_threads_claim_one_occurrence_once(self, store: MetadataStore) -> None:
        schedule = store.create_schedule(schedule_spec())
        threads_n = 16
        barrier = threading.Barrier(threads_n)
        results: list[bool] = []
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            barrier.wait()
            try:
                results.append(
                    store.claim_firing(
                        schedule.schedule_id, "2026-01-01T03:00:00Z", fired_by=str(i)
                    )
                )
            except BaseException as e:  # the loser gets False, never an exception
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results) == [False] * (threads_n - 1) + [True]
        assert len(store.list_firings("nightly")) == 1

    def test_paused_schedule_claims_nothing_and_resume_moves_active_since(
        self, store: MetadataStore
    ) -> None:
        made = store.create_schedule(schedule_spec())
        store.set_schedule_enabled("nightly", False)
        assert store.get_schedule("nightly").enabled is False
        assert [s.name for s in store.list_schedules(enabled_only=True)] == []
        assert store.claim_firing(made.schedule_id, "t1") is False
        assert store.list_firings("nightly") == []
        resumed_at = made.created_at + 60_000
        store.set_schedule_enabled("nightly", True, at=resumed_at)
        again = store.get_schedule("nightly")
        assert (again.enabled, again.active_since, again.created_at) == (
            True, resumed_at, made.created_at,
        )  # fmt: skip
        store.set_schedule_enabled("nightly", True, at=resumed_at + 1)  # already enabled
        assert store.get_schedule("nightly").active_since == resumed_at
        assert store.claim_firing(made.schedule_id, "t1") is True

    def test_firing_results_and_latest_firing(self, store: MetadataStore) -> None:
        made = store.create_schedule(schedule_spec())
        sid = made.schedule_id
        for occurrence in ("t1", "t2", "t3"):
            assert store.claim_firing(sid, occurrence)
        store.record_firing_result(sid, "t1", status="FINISHED", run_id="r1", at=5)
        store.record_firing_result(sid, "t3", status="FAILED", error="x" * 20_000)
        last = store.get_schedule("nightly").last_firing
        assert last is not None and (last.occurrence, last.status) == ("t3", "FAILED")
        assert last.error is not None and 0 < len(last.error) <= 8001  # the tail is kept
        assert store.list_schedules()[0].last_firing == last
        assert [f.occurrence for f in store.list_firings("nightly", limit=2)] == ["t3", "t2"]
        first = store.list_firings("nightly")[-1]
        assert (first.status, first.run_id, first.finished_at) == ("FINISHED", "r1", 5)
        with pytest.raises(NotFound):
            store.record_firing_result(sid, "never", status="FINISHED")
        with pytest.raises(InvalidInput):
            store.record_firing_result(sid, "t2", status="DONE")
        assert store.list_firings("nightly")[1].status == "RUNNING"  # t2 unchanged

    def test_a_deleted_schedule_forgets_its_firings(self, store: MetadataStore) -> None:
        old = store.create_schedule(schedule_spec())
        assert store.claim_firing(old.schedule_id, "t1")
        store.delete_schedule("nightly")
        new = store.create_schedule(schedule_spec())
        assert new.last_firing is None
        assert store.claim_firing(new.schedule_id, "t1") is True

    def test_trigger_events(self, store: MetadataStore) -> None:
        e1 = store.add_trigger_event("alert", "drift:diabetes", {"psi": 0.4, "bad": float("nan")})
        e2 = store.add_trigger_event("alert", "latency")
        e3 = store.add_trigger_event("alert", "drift:diabetes", {"psi": 0.5})
        assert e1.event_id < e2.event_id < e3.event_id
        assert dict(e1.payload) == {"bad": None, "psi": 0.4}  # NaN has no JSON spelling
        assert store.list_trigger_events("alert") == [e3, e2, e1]
        assert store.list_trigger_events("alert", name="drift:diabetes") == [e3, e1]
        assert store.list_trigger_events("alert", limit=1) == [e3]
        assert store.list_trigger_events("alert", since=e3.time + 1) == []
        assert e2.payload == {}

    @pytest.mark.parametrize(
        ("kind", "name", "payload"),
        [
            ("weather", "drift", None),
            ("alert", "", None),
            ("alert", "bad\nname", None),
            ("alert", "drift", {"x": object()}),
            ("alert", "drift", ["not", "a", "mapping"]),
            ("alert", "drift", {"x": "y" * 70_000}),
        ],
    )
    def test_invalid_trigger_event_writes_nothing(
        self, store: MetadataStore, kind: str, name: str, payload: Any
    ) -> None:
        with pytest.raises(InvalidInput):
            store.add_trigger_event(kind, name, payload)
        assert store.list_trigger_events("alert") == []
