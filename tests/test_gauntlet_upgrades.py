"""Upgrades: a store written by each released schema revision opens with today's triptych,
migrates to head at open, and keeps every row; a store from a newer triptych is refused.

The frozen files (``tests/data/stores/store-NNNN.db``, made by ``make_stores.py`` there with
alembic and plain SQL) are copied before opening: the committed files never change. Rows are
counted per table before and after, and the entities are read back through the store API. The
totals (stores upgraded, rows checked, rows lost) are printed at the end of the run.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import pytest

from triptych.errors import ConfigError
from triptych.store.entities import RunSpec, RunStatus
from triptych.store.sql import migrate
from triptych.store.sql.store import SqlStore

STORES = Path(__file__).parent / "data" / "stores"
RELEASED = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"]
RUN_A, RUN_B = "a" * 32, "b" * 32
T = 1_764_000_000_000  # the frozen stores' clock (make_stores.py)


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"
                " AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_every_released_revision_has_a_frozen_store() -> None:
    made = sorted(p.stem.removeprefix("store-") for p in STORES.glob("store-*.db"))
    assert made == RELEASED
    known = sorted(migrate._known_revisions())
    assert known[: len(RELEASED)] == RELEASED  # a new released revision needs its file here
    for revision in RELEASED:
        assert _revision(STORES / f"store-{revision}.db") == revision


@pytest.mark.parametrize("revision", RELEASED)
def test_a_frozen_store_migrates_at_open_and_keeps_its_data(
    revision: str, tmp_path: Path, gauntlet: dict[str, int]
) -> None:
    path = tmp_path / f"store-{revision}.db"
    shutil.copyfile(STORES / path.name, path)
    before = _counts(path)
    assert sum(before.values()) > 0 and all(n > 0 for n in before.values()), before

    store = SqlStore(f"sqlite:///{path}")
    try:
        assert _revision(path) == migrate.HEAD
        after = _counts(path)
        lost = {t: n - after.get(t, 0) for t, n in before.items() if after.get(t, 0) < n}
        gauntlet["stores upgraded"] = gauntlet.get("stores upgraded", 0) + 1
        gauntlet["rows checked"] = gauntlet.get("rows checked", 0) + sum(before.values())
        gauntlet["rows lost"] = gauntlet.get("rows lost", 0) + sum(lost.values())
        assert lost == {}
        assert {t: after[t] for t in before} == before  # nothing added or lost by migrating
        _read_back(store, int(revision))
        _still_writable(store, int(revision))
    finally:
        store.close()
    SqlStore(f"sqlite:///{path}").close()  # opening again: nothing to migrate, still head
    assert _revision(path) == migrate.HEAD


def _read_back(store: SqlStore, revision: int) -> None:
    """Every entity the frozen file holds, through the store API."""
    experiment = store.get_experiment_by_name("diabetes")
    assert experiment is not None and experiment.tags == {"team": "clinic"}
    run = store.get_run(RUN_A)
    assert run.status == RunStatus.FINISHED and run.user == "ana"
    assert run.params == {"alpha": "0.5", "model": "Ridge"}
    assert run.tags["note"] == "baseline"
    assert run.metrics["loss"] == 0.25 and run.metrics["mse"] == 3299.1
    assert math.isnan(run.metrics["r2"])  # NaN kept as its flag
    assert [m.value for m in store.get_metric_history(RUN_A, "loss")] == [1.0, 0.5, 0.25]
    assert [i.name for i in run.inputs] == ["diabetes@1"]
    assert run.fingerprint is not None and run.fingerprint.env_digest == "e" * 64
    assert store.get_environment("e" * 64).packages == {"numpy": "2.0.0"}
    assert [e.path for e in store.walk_artifacts(RUN_A)] == [
        "model/manifest.json",
        "model/model.skops",
    ]
    child = store.get_run(RUN_B)
    assert child.parent_run_id == RUN_A and child.status == RunStatus.FAILED
    if revision >= 2:
        v1 = store.get_dataset_version("diabetes", 1)
        assert v1.rows == 442 and v1.tags == {"split": "all"} and v1.creator_run_id == RUN_A
        assert [v.version for v in store.list_dataset_versions("diabetes")] == [1, 2]
    if revision >= 3:
        champion = store.get_model_version("diabetes", None, alias="champion")
        assert champion.version == 1 and champion.tags == {"stage": "tested"}
        assert [v.version for v in store.list_model_versions("diabetes")] == [1, 2]
        assert [e.action for e in store.model_history("diabetes")] == [
            "register",
            "register",
            "alias",
        ]
    if revision >= 4:
        assert store.alias_requires_approval("diabetes", "champion")
        (request,) = store.list_alias_requests("diabetes", "pending")
        assert request.version == 2 and request.requester == "bo"
    if revision >= 5:
        schedule = store.get_schedule("nightly")
        assert schedule.spec == "0 3 * * *" and schedule.params == {"train.alpha": "0.5"}
        assert [f.status for f in store.list_firings("nightly")] == ["FINISHED"]
    if revision >= 6:
        deployment = store.get_deployment("clinic")
        assert deployment.canary == "models:/diabetes/2" and deployment.canary_weight == 10
        assert deployment.revision == 2
        assert [e.action for e in store.deployment_history("clinic")][-2:] == [
            "create",
            "canary",
        ] or sorted(e.action for e in store.deployment_history("clinic")) == ["canary", "create"]
    if revision >= 7:
        monitor = store.get_monitor("clinic")
        assert monitor.webhooks == ("https://hooks.example.com/x",) and monitor.window_s == 3600
        assert monitor.thresholds.psi == 0.2
        alerts = {a.key: a for a in store.list_alerts(monitor="clinic")}
        assert alerts["bmi"].status == "open" and alerts["bmi"].count == 2
        assert alerts["mse"].resolved_by == "bo"
    if revision >= 8:
        policy = store.get_monitor("clinic").policy
        assert policy is not None and policy.pipeline == "/srv/project/pipelines/train.py"
    if revision >= 9:
        alice, bob = store.get_user("alice"), store.get_user("bob")
        assert alice.role_on("*") == "admin" and bob.role_on("diabetes") == "editor"
        assert bob.created_by == "alice"
        tokens = {t.id: t for t in store.list_tokens()}
        assert set(tokens) == {"tok0000alice", "tok00000bob1"}
        assert tokens["tok0000alice"].active(T) and not tokens["tok00000bob1"].active(T + 150)
        assert store.authenticate("tok0000alice", "a1" * 32) == alice
    if revision >= 3:  # registered models gained tags (0010): none until some are set
        assert dict(store.get_registered_model("diabetes").tags) == {}


def _still_writable(store: SqlStore, revision: int) -> None:
    """The migrated store takes new writes, with its counters carrying on."""
    experiment = store.get_experiment_by_name("diabetes")
    assert experiment is not None
    run = store.create_run(RunSpec(experiment.experiment_id, name="after upgrade"))
    store.finish_run(run.run_id, RunStatus.FINISHED)
    assert store.get_run(run.run_id).status == RunStatus.FINISHED
    if revision >= 3:
        version = store.create_model_version("diabetes", f"runs:/{RUN_A}/model", run_id=RUN_A)
        assert version.version == 3  # after the two the old triptych registered
        store.update_registered_model("diabetes", tags={"team": "clinic"})
        assert dict(store.get_registered_model("diabetes").tags) == {"team": "clinic"}


def test_a_store_from_a_newer_triptych_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    shutil.copyfile(STORES / f"store-{RELEASED[-1]}.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = _counts(path)
    with pytest.raises(ConfigError) as refused:
        SqlStore(f"sqlite:///{path}")
    message = str(refused.value)
    assert "newer than this triptych" in message and "9999" in message
    assert "pip install -U triptych" in message  # the way forward
    assert _counts(path) == before  # nothing migrated, nothing written
    assert _revision(path) == "9999"
