"""The registries' part of the store contract: dataset versions and the model registry.

:class:`~triptych.testing.store_contract.StoreContract` inherits these tests, so every backend
runs them; they use its ``store`` and ``exp`` fixtures.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from triptych.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from triptych.store.base import MetadataStore
from triptych.store.entities import DataInput, DatasetVersionSpec, RunSpec

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def _run(store: MetadataStore, experiment_id: str, **kw: Any) -> str:
    return store.create_run(RunSpec(experiment_id, **kw)).run_id


class RegistryContract:
    """Dataset versions and registered models, as every metadata store keeps them."""

    # -- datasets ---------------------------------------------------------------------------
    def _spec(
        self, name: str = "diabetes", digest: str = DIGEST_A, **kw: Any
    ) -> DatasetVersionSpec:
        return DatasetVersionSpec(name, digest, kw.pop("blob", DIGEST_B), rows=10, size=100, **kw)

    def test_dataset_versions_are_numbered_and_deduplicated(self, store: MetadataStore) -> None:
        schema = {"columns": {"age": {"dtype": "float"}}}
        v1, created = store.create_dataset_version(self._spec(schema=schema, tags={"src": "sk"}))
        assert (v1.version, created, v1.uri) == (1, True, "datasets:/diabetes@1")
        again, created = store.create_dataset_version(self._spec(description="same bytes"))
        assert (again.version, created) == (1, False)
        v2, created = store.create_dataset_version(self._spec(digest="c" * 64, schema={"x": 1}))
        assert (v2.version, created) == (2, True)
        ds = store.get_dataset("diabetes")
        assert (ds.latest_version, ds.versions) == (2, 2)
        assert ds.schema == schema  # the first version's schema is the expected one
        assert store.get_dataset_version("diabetes").version == 2
        assert dict(store.get_dataset_version("diabetes", 1).tags) == {"src": "sk"}
        assert [v.version for v in store.list_dataset_versions("diabetes")] == [1, 2]
        assert [d.name for d in store.list_datasets()] == ["diabetes"]

    def test_dataset_schema_keeps_column_order(self, store: MetadataStore) -> None:
        schema = {"columns": {"zeta": {"dtype": "int"}, "alpha": {"dtype": "float"}}}
        v, _ = store.create_dataset_version(self._spec(schema=schema, profile=schema))
        assert list(v.schema["columns"]) == ["zeta", "alpha"]  # type: ignore[index]
        assert list(store.get_dataset("diabetes").schema["columns"]) == ["zeta", "alpha"]  # type: ignore[index]
        assert list(store.get_dataset_version("diabetes").profile["columns"]) == ["zeta", "alpha"]  # type: ignore[index]

    def test_dataset_errors(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.get_dataset("nope")
        with pytest.raises(NotFound):
            store.get_dataset_version("nope", 1)
        store.create_dataset_version(self._spec())
        with pytest.raises(NotFound, match="no version 7"):
            store.get_dataset_version("diabetes", 7)
        for bad in ("", "../x", "a/b", "has space", "x" * 300, "a@1"):
            with pytest.raises(InvalidInput):
                store.create_dataset_version(self._spec(name=bad))
        assert [d.name for d in store.list_datasets()] == ["diabetes"]

    def test_concurrent_versions_have_no_gaps_or_duplicates(self, store: MetadataStore) -> None:
        barrier = threading.Barrier(8)
        got: list[int] = []

        def worker(i: int) -> None:
            barrier.wait()
            got.append(store.create_dataset_version(self._spec(digest=f"{i:064x}"))[0].version)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 9))

    def test_update_schema_delete_and_lineage(self, store: MetadataStore, exp: str) -> None:
        store.create_dataset_version(self._spec())
        store.update_dataset_version(
            "diabetes", 1, tags={"a": "1"}, description="d", profile={"rows": 10}
        )
        store.update_dataset_version("diabetes", 1, tags={"b": "2"})
        v = store.get_dataset_version("diabetes", 1)
        assert (dict(v.tags), v.description, v.profile) == ({"a": "1", "b": "2"}, "d", {"rows": 10})
        store.set_dataset_schema("diabetes", {"columns": {}})
        assert store.get_dataset("diabetes").schema == {"columns": {}}
        rid = _run(store, exp)
        store.log_inputs(rid, [DataInput("diabetes@1", DIGEST_A)])
        assert store.runs_with_input(DIGEST_A) == [rid]
        assert store.versions_with_digest(DIGEST_A) == [("diabetes", 1)]
        assert store.runs_with_input("f" * 64) == []
        assert store.blob_in_use(DIGEST_B)
        store.delete_dataset_version("diabetes", 1)
        assert not store.blob_in_use(DIGEST_B)
        with pytest.raises(NotFound):
            store.get_dataset_version("diabetes", 1)
        v2, _ = store.create_dataset_version(self._spec(digest="c" * 64))
        assert v2.version == 2  # numbers are never reused

    # -- model registry ---------------------------------------------------------------------
    def test_model_versions_aliases_and_history(self, store: MetadataStore) -> None:
        v1 = store.create_model_version(
            "ridge", "runs:/a/model", run_id="a", user="ana", reason="first"
        )
        v2 = store.create_model_version("ridge", "runs:/b/model", run_id="b", tags={"k": "v"})
        assert (v1.version, v2.version, v2.uri) == (1, 2, "models:/ridge/2")
        assert store.set_model_alias("ridge", "champion", 1, user="ana", reason="initial") is None
        assert store.set_model_alias("ridge", "champion", 2, user="bo", reason="better") == 1
        model = store.get_registered_model("ridge")
        assert (model.latest_version, model.versions, dict(model.aliases)) == (
            2,
            2,
            {"champion": 2},
        )
        assert store.get_model_version("ridge", alias="champion").version == 2
        assert store.get_model_version("ridge").version == 2  # latest
        assert store.get_model_version("ridge", 2).aliases == ("champion",)
        assert [v.version for v in store.model_versions_of_runs(["a"])] == [1]
        history = store.model_history("ridge")
        assert [(e.action, e.version, e.alias, e.previous_version) for e in history] == [
            ("register", 1, None, None),
            ("register", 2, None, None),
            ("alias", 1, "champion", None),
            ("alias", 2, "champion", 1),
        ]
        assert history[-1].user == "bo" and history[-1].reason == "better"
        store.delete_model_version("ridge", 2, user="bo", reason="broken")
        assert dict(store.get_registered_model("ridge").aliases) == {}
        assert [e.action for e in store.model_history("ridge")][-2:] == ["unalias", "delete"]
        assert store.create_model_version("ridge", "runs:/c/model").version == 3  # never reused

    def test_model_registry_errors(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.get_registered_model("nope")
        store.create_model_version("m", "runs:/a/model")
        with pytest.raises(NotFound):
            store.set_model_alias("m", "champion", 9)
        with pytest.raises(NotFound, match="alias"):
            store.get_model_version("m", alias="champion")
        for bad in ("latest", "1abc", "has space", ""):
            with pytest.raises(InvalidInput):
                store.set_model_alias("m", bad, 1)
        with pytest.raises(InvalidInput):
            store.create_model_version("bad/name", "runs:/a/model")
        assert [e.action for e in store.model_history("m")] == ["register"]

    def test_a_registered_model_is_created_empty_with_description_and_tags(
        self, store: MetadataStore
    ) -> None:
        made = store.create_registered_model(
            "empty", description="to be trained", tags={"team": "ds"}, user="ana", reason="plan"
        )
        assert (made.name, made.description, dict(made.tags)) == (
            "empty",
            "to be trained",
            {"team": "ds"},
        )
        assert (made.versions, made.latest_version, dict(made.aliases)) == (0, None, {})
        assert store.get_registered_model("empty") == made
        assert [m.name for m in store.list_registered_models()] == ["empty"]
        assert store.list_model_versions("empty") == []
        with pytest.raises(NotFound, match="no versions"):
            store.get_model_version("empty")
        assert store.create_model_version("empty", "runs:/a/model").version == 1  # joins it
        model = store.get_registered_model("empty")
        assert (model.versions, model.description, dict(model.tags)) == (
            1,
            "to be trained",
            {"team": "ds"},
        )
        (created, _) = store.model_history("empty")
        assert (created.action, created.user, created.reason) == ("create", "ana", "plan")

    def test_registered_model_description_and_tags_change(self, store: MetadataStore) -> None:
        store.create_model_version("m", "runs:/a/model")
        before = store.get_registered_model("m")
        store.update_registered_model("m", description="ridge", tags={"a": "1", "b": "2"})
        store.update_registered_model("m", tags={"b": "3"}, user="bo")
        model = store.get_registered_model("m")
        assert (model.description, dict(model.tags)) == ("ridge", {"a": "1", "b": "3"})
        assert model.last_update_time >= before.last_update_time
        store.delete_registered_model_tag("m", "a", user="bo")
        assert dict(store.get_registered_model("m").tags) == {"b": "3"}
        assert store.get_registered_model("m").description == "ridge"  # tags alone keep it
        with pytest.raises(NotFound, match="no tag"):
            store.delete_registered_model_tag("m", "a")
        actions = [e.action for e in store.model_history("m")]
        assert actions == ["register", "update", "update", "untag"]

    def test_model_version_tags_are_deleted_one_by_one(self, store: MetadataStore) -> None:
        store.create_model_version("m", "runs:/a/model", tags={"k": "v", "keep": "1"})
        store.delete_model_version_tag("m", 1, "k", user="ana")
        assert dict(store.get_model_version("m", 1).tags) == {"keep": "1"}
        with pytest.raises(NotFound, match="no tag"):
            store.delete_model_version_tag("m", 1, "k")
        with pytest.raises(NotFound):
            store.delete_model_version_tag("m", 7, "keep")
        assert [e.action for e in store.model_history("m")] == ["register", "untag"]

    def test_a_renamed_model_keeps_its_versions_aliases_and_trail(
        self, store: MetadataStore
    ) -> None:
        store.create_model_version("old", "runs:/a/model", tags={"k": "v"})
        store.create_model_version("old", "runs:/b/model")
        store.update_registered_model("old", description="d", tags={"t": "1"})
        store.set_model_alias("old", "champion", 2)
        store.set_alias_policy("old", "champion", True)
        renamed = store.rename_registered_model("old", "new", user="ana", reason="clearer")
        assert (renamed.name, renamed.versions, dict(renamed.aliases)) == (
            "new",
            2,
            {"champion": 2},
        )
        assert (renamed.description, dict(renamed.tags)) == ("d", {"t": "1"})
        with pytest.raises(NotFound):
            store.get_registered_model("old")
        assert store.get_model_version("new", alias="champion").version == 2
        assert dict(store.get_model_version("new", 1).tags) == {"k": "v"}
        assert store.alias_requires_approval("new", "champion")
        assert [m.name for m in store.list_registered_models()] == ["new"]
        history = store.model_history("new")
        assert [e.action for e in history] == [
            "register",
            "register",
            "update",
            "alias",
            "policy",
            "rename",
        ]
        assert dict(history[-1].details or {}) == {"from": "old", "to": "new"}
        assert store.model_history("old") == []
        assert store.create_model_version("new", "runs:/c/model").version == 3  # counter kept
        store.create_model_version("old", "runs:/d/model")  # the old name is free again
        assert store.get_registered_model("old").versions == 1

    def test_registered_model_errors_change_nothing(self, store: MetadataStore) -> None:
        store.create_model_version("a", "runs:/a/model")
        store.create_registered_model("b", description="bee")
        with pytest.raises(AlreadyExists):
            store.create_registered_model("a", description="clobber")
        with pytest.raises(AlreadyExists, match="'b'"):
            store.rename_registered_model("a", "b")
        for bad in ("", "../x", "a/b", "has space", "x" * 300):
            with pytest.raises(InvalidInput, match="invalid model name"):
                store.create_registered_model(bad)
            with pytest.raises(InvalidInput):
                store.rename_registered_model("a", bad)
        with pytest.raises(InvalidInput):
            store.create_registered_model("c", tags={"bad key!": "x"})
        with pytest.raises(InvalidInput):
            store.update_registered_model("a", tags={"../up": "x"}, description="changed")
        for call in (
            lambda: store.update_registered_model("nope", description="x"),
            lambda: store.delete_registered_model_tag("nope", "k"),
            lambda: store.rename_registered_model("nope", "other"),
            lambda: store.delete_registered_model("nope"),
            lambda: store.delete_model_version_tag("nope", 1, "k"),
        ):
            with pytest.raises(NotFound):
                call()
        assert [m.name for m in store.list_registered_models()] == ["a", "b"]
        a, b = store.get_registered_model("a"), store.get_registered_model("b")
        assert (a.description, dict(a.tags), a.versions) == (None, {}, 1)
        assert (b.description, b.versions) == ("bee", 0)
        assert [e.action for e in store.model_history("a")] == ["register"]
        assert store.model_history("nope") == store.model_history("other") == []

    def test_a_deleted_model_is_gone_but_its_trail_stays(self, store: MetadataStore) -> None:
        store.create_model_version("m", "runs:/a/model", tags={"k": "v"})
        store.update_registered_model("m", tags={"t": "1"})
        store.set_model_alias("m", "champion", 1)
        store.set_alias_policy("m", "champion", True)
        store.create_alias_request("m", "champion", 1, user="ana")
        store.delete_registered_model("m", user="bo", reason="retired")
        with pytest.raises(NotFound):
            store.get_registered_model("m")
        assert store.list_registered_models() == []
        actions = [e.action for e in store.model_history("m")]
        assert actions[-3:] == ["unalias", "delete", "delete"]
        assert (store.model_history("m")[-1].version, store.model_history("m")[-1].reason) == (
            None,
            "retired",
        )
        fresh = store.create_registered_model("m")  # the name starts afresh
        assert (fresh.versions, dict(fresh.tags), dict(fresh.aliases)) == (0, {}, {})
        assert not store.alias_requires_approval("m", "champion")
        assert store.list_alias_requests("m") == []

    def test_twenty_concurrent_registrations(self, store: MetadataStore) -> None:
        barrier = threading.Barrier(20)
        got: list[int] = []

        def worker(i: int) -> None:
            barrier.wait()
            got.append(store.create_model_version("raced", f"runs:/{i}/model").version)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 21))
        assert store.get_registered_model("raced").versions == 20

    def test_alias_approvals(self, store: MetadataStore) -> None:
        from triptych.errors import PermissionDenied

        store.create_model_version("m", "runs:/a/model")
        store.create_model_version("m", "runs:/b/model")
        assert not store.alias_requires_approval("m", "production")
        store.set_alias_policy("m", "production", True, user="admin")
        assert store.alias_requires_approval("m", "production")
        req = store.create_alias_request("m", "production", 2, user="ana", reason="ship it")
        assert (req.status, req.requester, req.version) == ("pending", "ana", 2)
        with pytest.raises(PermissionDenied, match="cannot approve"):
            store.decide_alias_request(req.request_id, True, user="ana")
        done = store.decide_alias_request(req.request_id, True, user="bo", reason="ok")
        assert (done.status, done.decided_by) == ("approved", "bo")
        assert store.get_model_version("m", alias="production").version == 2
        with pytest.raises(Conflict):
            store.decide_alias_request(req.request_id, False, user="cy")
        other = store.create_alias_request("m", "production", 1, user="ana")
        assert store.decide_alias_request(other.request_id, False, user="bo").status == "rejected"
        assert store.get_model_version("m", alias="production").version == 2  # unchanged
        assert [r.status for r in store.list_alias_requests("m")] == ["approved", "rejected"]
        assert store.list_alias_requests("m", "pending") == []
        actions = [e.action for e in store.model_history("m")]
        assert actions[-5:] == ["policy", "request", "alias", "request", "reject"]
        with pytest.raises(NotFound):
            store.decide_alias_request(9999, True, user="bo")
