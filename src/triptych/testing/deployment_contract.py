"""The deployment half of the store contract: revisions, the audit trail, concurrent writers.

:class:`~triptych.testing.store_contract.StoreContract` inherits these tests, so every backend
runs them; they need the same ``store`` fixture (a fresh, empty store). The store checks
shapes only: addresses here need not resolve (that is the service's job).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from typing import Any

import pytest

from triptych.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from triptych.store.base import MetadataStore
from triptych.store.entities import Deployment, DeploymentSpec, Thresholds

CHAMPION = "models:/diabetes@champion"
CHALLENGER = "models:/diabetes@challenger"


def deployment_spec(**kw: Any) -> DeploymentSpec:
    """A valid spec with a 10% canary; keyword arguments replace fields."""
    fields: dict[str, Any] = {"primary": CHAMPION, "canary": CHALLENGER, "canary_weight": 10}
    fields.update(kw)
    return DeploymentSpec(**fields)


class DeploymentContract:
    """Behaviour every metadata store guarantees for deployments (see ``store/deployments.py``)."""

    def test_create_get_list(self, store: MetadataStore) -> None:
        made = store.create_deployment(
            "diabetes", deployment_spec(shadow="models:/diabetes/3"), actor="ana", reason="go"
        )
        assert isinstance(made, Deployment)
        assert (made.name, made.primary, made.canary, made.canary_weight, made.shadow) == (
            "diabetes", CHAMPION, CHALLENGER, 10, "models:/diabetes/3",
        )  # fmt: skip
        assert (made.revision, made.created_by, made.thresholds) == (1, "ana", Thresholds())
        assert made.created_at == made.updated_at > 0 and made.uri == "deployments:/diabetes"
        assert store.get_deployment("diabetes") == made
        store.create_deployment("alpha", DeploymentSpec("runs:/" + "a" * 32 + "/model"))
        assert [d.name for d in store.list_deployments()] == ["alpha", "diabetes"]
        (event,) = store.deployment_history("diabetes")
        assert (event.revision, event.action, event.actor, event.reason) == (
            1,
            "create",
            "ana",
            "go",
        )
        assert event.before is None and event.after == made.spec

    def test_thresholds_round_trip(self, store: MetadataStore) -> None:
        t = Thresholds(max_error_rate=0.1, max_p99_ms=25.5, min_requests=200)
        assert store.create_deployment("d", deployment_spec(thresholds=t)).thresholds == t
        off = Thresholds(max_error_rate=None, max_p99_ms=None, min_requests=1)
        changed = store.update_deployment("d", deployment_spec(thresholds=off), action="thresholds")
        assert store.get_deployment("d").thresholds == off == changed.thresholds
        assert store.deployment_history("d")[-1].before.thresholds == t  # type: ignore[union-attr]

    def test_duplicate_name_is_refused(self, store: MetadataStore) -> None:
        store.create_deployment("diabetes", deployment_spec())
        with pytest.raises(AlreadyExists, match="diabetes"):
            store.create_deployment("diabetes", deployment_spec(canary=None, canary_weight=0))
        assert store.get_deployment("diabetes").canary == CHALLENGER
        assert len(store.deployment_history("diabetes")) == 1

    @pytest.mark.parametrize(
        "name, bad",
        [
            ("has space", {}),
            ("../x", {}),
            ("", {}),
            ("ok", {"canary_weight": 101}),
            ("ok", {"canary_weight": -1}),
            ("ok", {"canary_weight": 2.5}),
            ("ok", {"canary_weight": True}),
            ("ok", {"canary": None, "canary_weight": 10}),  # a weight without a canary
            ("ok", {"shadow": CHAMPION}),  # shadowing the primary
            ("ok", {"canary": CHAMPION}),  # the canary is the primary
            ("ok", {"primary": ""}),
            ("ok", {"primary": "models:/a b"}),
            ("ok", {"thresholds": Thresholds(max_error_rate=1.5)}),
            ("ok", {"thresholds": Thresholds(max_p99_ms=-1)}),
            ("ok", {"thresholds": Thresholds(min_requests=0)}),
        ],
    )
    def test_invalid_deployment_writes_nothing(
        self, store: MetadataStore, name: str, bad: dict[str, Any]
    ) -> None:
        with pytest.raises(InvalidInput):
            store.create_deployment(name, deployment_spec(**bad))
        assert store.list_deployments() == []
        with pytest.raises(NotFound):
            store.deployment_history(name or "ok")

    def test_update_bumps_the_revision_and_records_before_and_after(
        self, store: MetadataStore
    ) -> None:
        made = store.create_deployment("d", deployment_spec())
        spec = replace(made.spec, canary_weight=50)
        changed = store.update_deployment(
            "d", spec, action="canary", expected_revision=1, actor="bo", reason="looks good",
            details={"note": [1, 2]},
        )  # fmt: skip
        assert (changed.revision, changed.canary_weight, changed.created_at) == (
            2, 50, made.created_at,
        )  # fmt: skip
        assert changed.updated_at >= made.updated_at and changed.created_by is None
        assert store.get_deployment("d") == changed
        first, second = store.deployment_history("d")
        assert (second.revision, second.action, second.actor, second.reason) == (
            2, "canary", "bo", "looks good",
        )  # fmt: skip
        assert second.before == made.spec and second.after == spec
        assert second.details == {"note": [1, 2]} and first.action == "create"
        assert [e.revision for e in store.deployment_history("d", limit=1)] == [2]

    def test_stale_expected_revision_is_a_conflict_and_writes_nothing(
        self, store: MetadataStore
    ) -> None:
        store.create_deployment("d", deployment_spec())
        store.update_deployment("d", deployment_spec(canary_weight=20), action="canary")
        with pytest.raises(Conflict, match="revision 2"):
            store.update_deployment(
                "d", deployment_spec(canary_weight=90), action="canary", expected_revision=1
            )
        with pytest.raises(Conflict):
            store.delete_deployment("d", expected_revision=1)
        assert store.get_deployment("d").canary_weight == 20
        assert [e.revision for e in store.deployment_history("d")] == [1, 2]

    def test_bad_changes_write_nothing(self, store: MetadataStore) -> None:
        store.create_deployment("d", deployment_spec())
        with pytest.raises(InvalidInput):
            store.update_deployment("d", deployment_spec(canary_weight=101), action="canary")
        with pytest.raises(InvalidInput):
            store.update_deployment("d", deployment_spec(), action="bogus")
        with pytest.raises(NotFound):
            store.update_deployment("nope", deployment_spec(), action="canary")
        with pytest.raises(NotFound):
            store.delete_deployment("nope")
        with pytest.raises(NotFound):
            store.get_deployment("nope")
        assert store.get_deployment("d").revision == 1
        assert len(store.deployment_history("d")) == 1

    def test_delete_keeps_the_trail_and_a_new_one_continues_it(self, store: MetadataStore) -> None:
        store.create_deployment("d", deployment_spec())
        store.update_deployment("d", deployment_spec(canary=None, canary_weight=0), action="canary")
        store.delete_deployment("d", actor="ana", reason="retired")
        with pytest.raises(NotFound):
            store.get_deployment("d")
        assert store.list_deployments() == []
        trail = store.deployment_history("d")
        assert [(e.revision, e.action) for e in trail] == [
            (1, "create"),
            (2, "canary"),
            (3, "delete"),
        ]
        assert trail[-1].after is None and trail[-1].reason == "retired"
        again = store.create_deployment("d", deployment_spec())
        assert again.revision == 4  # revisions of a name are never reused
        assert [e.action for e in store.deployment_history("d")][-1] == "create"

    def test_concurrent_writers_get_distinct_revisions(self, store: MetadataStore) -> None:
        store.create_deployment("d", deployment_spec())
        errors: list[BaseException] = []

        def change(weight: int) -> None:
            try:
                store.update_deployment("d", deployment_spec(canary_weight=weight), action="canary")
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=change, args=(w,)) for w in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        trail = store.deployment_history("d")
        assert [e.revision for e in trail] == list(range(1, 10))
        for earlier, later in itertools.pairwise(trail):  # each change saw the one before
            assert later.before == earlier.after
        assert store.get_deployment("d").revision == 9

    def test_concurrent_changes_of_one_revision_let_one_through(self, store: MetadataStore) -> None:
        store.create_deployment("d", deployment_spec())
        outcomes: list[str] = []
        lock = threading.Lock()

        def change(weight: int) -> None:
            try:
                store.update_deployment(
                    "d", deployment_spec(canary_weight=weight), action="canary",
                    expected_revision=1,
                )  # fmt: skip
                result = "won"
            except Conflict:
                result = "conflict"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=change, args=(w,)) for w in range(20, 26)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
        assert [e.revision for e in store.deployment_history("d")] == [1, 2]

    def test_concurrent_creates_of_one_name_let_one_through(self, store: MetadataStore) -> None:
        outcomes: list[str] = []

        def create(weight: int) -> None:
            try:
                store.create_deployment("d", deployment_spec(canary_weight=weight))
                outcomes.append("won")
            except AlreadyExists:
                outcomes.append("exists")

        threads = [threading.Thread(target=create, args=(w,)) for w in range(1, 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["exists"] * 4 + ["won"]
        assert len(store.deployment_history("d")) == 1

    def test_history_of_a_name_that_never_existed(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="never existed"):
            store.deployment_history("ghost")
