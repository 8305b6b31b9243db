"""The monitoring half of the store contract: monitors, alert dedupe, cooldown, status.

:class:`~triptych.testing.store_contract.StoreContract` inherits these tests, so every backend
runs them with its ``store`` fixture (a fresh, empty store). The store checks shapes only: the
deployment and dataset named here need not exist (that is the service's job).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from triptych.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from triptych.store.base import MetadataStore
from triptych.store.entities import LoopPolicy, Monitor, MonitorSpec, MonitorThresholds

REFERENCE = "datasets:/diabetes@3"
HOOK = "https://hooks.example.com/triptych"
POLICY = LoopPolicy("pipelines/training.py")


class MonitoringContract:
    """Behaviour every metadata store guarantees for monitoring (``store/monitoring.py``)."""

    def test_monitor_create_get_list_update_delete(self, store: MetadataStore) -> None:
        spec = MonitorSpec(
            REFERENCE, 900, MonitorThresholds(psi=0.3, ks=None), (HOOK,), cooldown_s=600
        )
        made = store.create_monitor("diabetes", spec, actor="ana")
        assert isinstance(made, Monitor)
        assert made.spec == spec and made.created_by == "ana"
        assert made.created_at == made.updated_at > 0
        assert store.get_monitor("diabetes") == made
        store.create_monitor("alpha", MonitorSpec("datasets:/a@1"))
        assert [m.name for m in store.list_monitors()] == ["alpha", "diabetes"]
        changed = store.update_monitor("diabetes", replace(spec, window_s=3600, webhooks=()))
        assert (changed.window_s, changed.webhooks, changed.created_at) == (
            3600,
            (),
            made.created_at,
        )
        store.delete_monitor("diabetes")
        with pytest.raises(NotFound, match="monitor 'diabetes'"):
            store.get_monitor("diabetes")
        with pytest.raises(NotFound):
            store.delete_monitor("diabetes")
        with pytest.raises(NotFound):
            store.update_monitor("diabetes", spec)

    def test_monitor_policy_round_trips(self, store: MetadataStore) -> None:
        policy = LoopPolicy(
            "examples/diabetes/pipeline.py",
            triggers=("drift", "schedule"),
            schedule="0 3 * * 1",
            params={"train.alpha": 2.0, "validate.psi_threshold": 1},
            data_param=None,
            min_labels=20,
            tolerance=0.1,
            retrain_cooldown_s=0,
        )
        made = store.create_monitor("diabetes", MonitorSpec(REFERENCE, policy=policy))
        assert made.policy == policy and store.get_monitor("diabetes").policy == policy
        assert store.create_monitor("plain", MonitorSpec(REFERENCE)).policy is None
        cleared = store.update_monitor("diabetes", replace(made.spec, policy=None))
        assert cleared.policy is None and store.get_monitor("diabetes").policy is None

    def test_one_monitor_per_deployment(self, store: MetadataStore) -> None:
        store.create_monitor("diabetes", MonitorSpec(REFERENCE))
        with pytest.raises(AlreadyExists, match="already has a monitor"):
            store.create_monitor("diabetes", MonitorSpec("datasets:/other@1"))
        assert store.get_monitor("diabetes").reference == REFERENCE

    @pytest.mark.parametrize(
        "spec",
        [
            MonitorSpec("diabetes@3"),
            MonitorSpec("datasets:/diabetes@latest"),
            MonitorSpec(REFERENCE, window_s=10),
            MonitorSpec(REFERENCE, window_s=10**9),
            MonitorSpec(REFERENCE, cooldown_s=-1),
            MonitorSpec(REFERENCE, thresholds=MonitorThresholds(psi=-1)),
            MonitorSpec(REFERENCE, thresholds=MonitorThresholds(drift_share=1.5)),
            MonitorSpec(REFERENCE, thresholds=MonitorThresholds(ks=float("nan"))),
            MonitorSpec(REFERENCE, webhooks=("ftp://example.com/x",)),
            MonitorSpec(REFERENCE, webhooks=("https:///nohost",)),
            MonitorSpec(REFERENCE, webhooks=(HOOK, HOOK)),
            MonitorSpec(REFERENCE, policy=replace(POLICY, pipeline=" ")),
            MonitorSpec(REFERENCE, policy=replace(POLICY, triggers=())),
            MonitorSpec(REFERENCE, policy=replace(POLICY, triggers=("drift", "drift"))),
            MonitorSpec(REFERENCE, policy=replace(POLICY, triggers=("weather",))),
            MonitorSpec(REFERENCE, policy=replace(POLICY, triggers=("schedule",))),
            MonitorSpec(REFERENCE, policy=replace(POLICY, schedule="0 3 * * *")),
            MonitorSpec(REFERENCE, policy=replace(POLICY, params={"bad key": 1})),
            MonitorSpec(REFERENCE, policy=replace(POLICY, params={"train.alpha": [1]})),
            MonitorSpec(REFERENCE, policy=replace(POLICY, data_param="in gest")),
            MonitorSpec(REFERENCE, policy=replace(POLICY, min_labels=0)),
            MonitorSpec(REFERENCE, policy=replace(POLICY, tolerance=-0.1)),
            MonitorSpec(REFERENCE, policy=replace(POLICY, retrain_cooldown_s=-5)),
        ],
    )
    def test_bad_monitor_specs_write_nothing(self, store: MetadataStore, spec: MonitorSpec) -> None:
        with pytest.raises(InvalidInput):
            store.create_monitor("diabetes", spec)
        assert store.list_monitors() == []

    def test_alert_dedupes_while_active(self, store: MetadataStore) -> None:
        first = store.raise_alert(
            "diabetes", "drift", "age", "warning", "psi 0.31", {"psi": 0.31}, at=1000
        )
        assert first.outcome == "raised" and first.is_new
        a = first.alert
        assert (a.monitor, a.kind, a.key, a.status, a.count) == (
            "diabetes",
            "drift",
            "age",
            "open",
            1,
        )
        assert (a.first_seen, a.last_seen, a.payload) == (1000, 1000, {"psi": 0.31})
        again = store.raise_alert(
            "diabetes", "drift", "age", "critical", "psi 0.5", {"psi": 0.5}, at=2000
        )
        assert again.outcome == "deduplicated" and again.alert.id == a.id
        assert (again.alert.count, again.alert.first_seen, again.alert.last_seen) == (2, 1000, 2000)
        assert (again.alert.severity, again.alert.payload) == ("critical", {"psi": 0.5})
        other = store.raise_alert("diabetes", "drift", "bmi", "warning", "psi 0.3", at=2500)
        assert other.is_new and other.alert.id != a.id
        # acknowledged still counts as active
        store.set_alert_status(a.id, "acknowledged", actor="ana")
        assert (
            store.raise_alert("diabetes", "drift", "age", "warning", "x", at=3000).alert.id == a.id
        )
        assert [x.key for x in store.list_alerts()] == ["age", "bmi"]
        assert [x.key for x in store.list_alerts(status="open")] == ["bmi"]
        assert store.list_alerts(monitor="other") == []
        assert len(store.list_alerts(limit=1)) == 1

    def test_cooldown_after_resolution(self, store: MetadataStore) -> None:
        a = store.raise_alert("d", "drift", "age", "warning", "m", at=10_000).alert
        resolved = store.set_alert_status(a.id, "resolved", actor="bo")
        assert (resolved.status, resolved.resolved_by) == ("resolved", "bo")
        assert resolved.resolved_at is not None
        cooled = store.raise_alert("d", "drift", "age", "warning", "m", cooldown_s=60, at=40_000)
        assert cooled.outcome == "cooled" and cooled.alert.id == a.id
        assert (cooled.alert.count, cooled.alert.status) == (2, "resolved")
        fresh = store.raise_alert("d", "drift", "age", "warning", "m", cooldown_s=60, at=80_000)
        assert fresh.outcome == "raised" and fresh.alert.id != a.id
        # without a cooldown a resolved alert never swallows a new breach
        store.set_alert_status(fresh.alert.id, "resolved")
        assert store.raise_alert("d", "drift", "age", "warning", "m", at=81_000).is_new

    def test_alert_status_changes(self, store: MetadataStore) -> None:
        a = store.raise_alert("d", "performance", "rmse", "critical", "worse").alert
        acked = store.set_alert_status(a.id, "acknowledged", actor="ana")
        assert (acked.status, acked.acknowledged_by) == ("acknowledged", "ana")
        assert acked.acknowledged_at is not None
        assert store.set_alert_status(a.id, "acknowledged", actor="bo") == acked  # idempotent
        store.set_alert_status(a.id, "resolved")
        with pytest.raises(Conflict, match="resolved"):
            store.set_alert_status(a.id, "acknowledged")
        with pytest.raises(InvalidInput):
            store.set_alert_status(a.id, "open")
        with pytest.raises(NotFound):
            store.set_alert_status(999_999, "resolved")
        with pytest.raises(NotFound):
            store.get_alert(999_999)
        assert store.get_alert(a.id).status == "resolved"

    @pytest.mark.parametrize(
        "args",
        [
            ("d", "Drift!", "age", "warning", "m"),
            ("d", "drift", "", "warning", "m"),
            ("d", "drift", "age", "fatal", "m"),
            ("d", "drift", "age", "warning", "m" * 9000),
            ("bad name/x", "drift", "age", "warning", "m"),
        ],
    )
    def test_bad_alerts_write_nothing(
        self, store: MetadataStore, args: tuple[str, str, str, str, str]
    ) -> None:
        monitor, kind, key, severity, message = args
        with pytest.raises(InvalidInput):
            store.raise_alert(monitor, kind, key, severity, message)
        with pytest.raises(InvalidInput, match="JSON"):
            store.raise_alert("d", "drift", "age", "warning", "m", {"x": object()})
        with pytest.raises(InvalidInput, match="status"):
            store.list_alerts(status="closed")
        assert store.list_alerts() == []

    def test_concurrent_raises_make_one_alert(self, store: MetadataStore) -> None:
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                outcomes.append(store.raise_alert("d", "drift", "age", "warning", "m").outcome)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(outcomes) == ["deduplicated"] * 7 + ["raised"]
        (alert,) = store.list_alerts()
        assert alert.count == 8
