"""Schema migrations: what alembic builds is what the code expects, on every dialect."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from triptych.errors import ConfigError
from triptych.store.sql import migrate
from triptych.store.sql.engine import normalise_url
from triptych.store.sql.schema import metadata
from triptych.store.sql.store import SqlStore


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue("postgres_url")


def test_migrated_schema_matches_the_code(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    SqlStore(url).close()
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_head_constant_is_the_latest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == migrate.HEAD


def test_opening_twice_migrates_once(url: str) -> None:
    SqlStore(url).close()
    engine = create_engine(normalise_url(url))
    assert migrate.current_revision(engine) == migrate.HEAD
    SqlStore(url).close()  # fast path: nothing to do
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_database_from_a_newer_triptych_is_refused(url: str) -> None:
    SqlStore(url).close()
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="newer"):
        SqlStore(url)


def test_upgrade_keeps_data_written_by_an_older_schema(url: str) -> None:
    """A store created at the first revision, with a run in it, upgrades in place."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(normalise_url(url))
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO experiments (name, lifecycle, creation_time, last_update_time) "
                "VALUES ('old', 'active', 1, 1)"
            )
        )
    engine.dispose()
    store = SqlStore(url)
    try:
        assert [e.name for e in store.list_experiments()] == ["old"]
        assert store.list_datasets() == []  # the new tables exist
    finally:
        store.close()
