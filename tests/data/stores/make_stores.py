"""Regenerate the frozen stores: one SQLite file per released schema revision.

Each ``store-NNNN.db`` is an empty file upgraded by alembic to revision ``NNNN`` (and no
further), then filled with plain SQL written for the tables as that revision left them, so the
files keep the shape old triptych versions really wrote even as the code moves on.
``tests/test_gauntlet_upgrades.py`` opens each with today's store, which migrates it to head,
and checks that every row is still there and reads back through the store API.

Run from the repository root: ``python tests/data/stores/make_stores.py``. The files are
committed; regenerate them only to add a new revision's file (old ones must not change).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).parent
RELEASED = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
T = 1_764_000_000_000  # 2025-11-24, in ms
RUN_A = "a" * 32
RUN_B = "b" * 32
ENV = "e" * 64
DATA = "d" * 64
BLOB = "f" * 64

# Rows each revision's new tables hold (cumulative: a 0003 file has the 0001-0003 rows).
SQL: dict[str, list[str]] = {
    "0001": [
        f"INSERT INTO environments VALUES ('{ENV}', '3.11.7', 'Linux-x86_64', "
        f'\'{{"numpy": "2.0.0"}}\', {T})',
        f"INSERT INTO experiments VALUES (1, 'Default', 'active', {T}, {T})",
        f"INSERT INTO experiments VALUES (2, 'diabetes', 'active', {T}, {T + 5})",
        "INSERT INTO experiment_tags VALUES (2, 'team', 'clinic')",
        "INSERT INTO runs (id, uuid, experiment_id, name, status, lifecycle, user, start_time,"
        " end_time, heartbeat_time, heartbeat_timeout, parent_id, code_commit, env_digest,"
        " data_digest, fingerprint) VALUES"
        f" (1, '{RUN_A}', 2, 'ridge', 'FINISHED', 'active', 'ana', {T}, {T + 900}, {T + 800},"
        f" 300.0, NULL, '0123456789abcdef0123456789abcdef01234567', '{ENV}', '{DATA}',"
        f" '{'c' * 64}')",
        "INSERT INTO runs (id, uuid, experiment_id, name, status, lifecycle, user, start_time,"
        " end_time, heartbeat_time, heartbeat_timeout, parent_id) VALUES"
        f" (2, '{RUN_B}', 2, 'ridge/train', 'FAILED', 'active', 'ana', {T + 10}, {T + 20},"
        f" NULL, 300.0, 1)",
        "INSERT INTO params VALUES (1, 'alpha', '0.5'), (1, 'model', 'Ridge')",
        "INSERT INTO tags VALUES (1, 'note', 'baseline'), (2, 'triptych.step', 'train')",
        f"INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES"
        f" (1, 'loss', 1.0, 0, 0, {T + 1}), (1, 'loss', 0.5, 0, 1, {T + 2}),"
        f" (1, 'loss', 0.25, 0, 2, {T + 3}), (1, 'mse', 3299.1, 0, 0, {T + 4}),"
        f" (1, 'r2', 0.0, 1, 0, {T + 4})",
        f"INSERT INTO latest_metrics VALUES (1, 'loss', 0.25, 0, 2, {T + 3}),"
        f" (1, 'mse', 3299.1, 0, 0, {T + 4}), (1, 'r2', 0.0, 1, 0, {T + 4})",
        f"INSERT INTO artifacts VALUES (1, 'model/model.skops', '{BLOB}', 1234, {T + 5}),"
        f" (1, 'model/manifest.json', '{'9' * 64}', 321, {T + 5})",
        f"INSERT INTO run_inputs VALUES (1, 'diabetes@1', '{DATA}', 442,"
        " '{\"age\": \"float64\"}', 'datasets:/diabetes@1')",
    ],
    "0002": [
        f"INSERT INTO datasets VALUES (1, 'diabetes', 'the sklearn data', NULL, 2, {T}, {T + 9})",
        f"INSERT INTO dataset_versions VALUES (1, 1, 1, '{DATA}', '{BLOB}', 442, 9000,"
        ' \'{"columns": {"age": {"dtype": "float64"}}}\', \'{}\', \'/data/diabetes.csv\','
        f" NULL, '{RUN_A}', {T})",
        f"INSERT INTO dataset_versions VALUES (2, 1, 2, '{'2' * 64}', '{'3' * 64}', 400, 8000,"
        f" NULL, NULL, 'pandas.DataFrame', 'resampled', NULL, {T + 9})",
        "INSERT INTO dataset_version_tags VALUES (1, 'split', 'all')",
    ],
    "0003": [
        f"INSERT INTO registered_models VALUES (1, 'diabetes', 'ridge on diabetes', 2, {T},"
        f" {T + 30})",
        f"INSERT INTO model_versions VALUES (1, 1, 1, 'runs:/{RUN_A}/model', '{RUN_A}',"
        f" NULL, 'ana', {T + 10})",
        f"INSERT INTO model_versions VALUES (2, 1, 2, 'runs:/{RUN_B}/model', '{RUN_B}',"
        f" 'retrained', 'bo', {T + 20})",
        "INSERT INTO model_version_tags VALUES (1, 'stage', 'tested')",
        "INSERT INTO model_aliases VALUES (1, 'champion', 1)",
        "INSERT INTO model_events (model_name, action, version, alias, previous_version, user,"
        f" reason, details, time) VALUES ('diabetes', 'register', 1, NULL, NULL, 'ana', NULL,"
        f" NULL, {T + 10}), ('diabetes', 'register', 2, NULL, NULL, 'bo', NULL, NULL,"
        f" {T + 20}), ('diabetes', 'alias', 1, 'champion', NULL, 'ana', 'best mse',"
        f" '{{\"mse\": 3299.1}}', {T + 30})",
    ],
    "0004": [
        "INSERT INTO alias_policies VALUES (1, 'champion', 1)",
        "INSERT INTO alias_requests VALUES (1, 1, 'champion', 2, 'bo', 'better r2', 'pending',"
        f" NULL, NULL, {T + 40}, NULL)",
    ],
    "0005": [
        "INSERT INTO schedules VALUES (1, 'nightly', '/srv/project/pipelines/train.py',"
        " '/srv/project', 'cron', '0 3 * * *', '{\"train.alpha\": \"0.5\"}', 'thread', 1,"
        f" {T}, 'ana', {T})",
        "INSERT INTO schedule_firings (schedule_id, occurrence, fired_at, fired_by, status,"
        f" run_id, error, finished_at) VALUES (1, '2025-11-25T03:00', {T + 50}, 'host-1',"
        f" 'FINISHED', '{RUN_A}', NULL, {T + 60})",
        "INSERT INTO trigger_events (kind, name, payload, time) VALUES ('dataset', 'diabetes',"
        f" '{{\"version\": 2}}', {T + 9})",
    ],
    "0006": [
        "INSERT INTO deployments VALUES (1, 'clinic', 'models:/diabetes@champion',"
        ' \'models:/diabetes/2\', 10, NULL, \'{"max_error_rate": 0.05, "max_p99_ms": null,'
        f" \"min_requests\": 50}}', 2, {T + 70}, {T + 80}, 'ana')",
        "INSERT INTO deployment_events (deployment, revision, action, actor, time, before,"
        " after, reason, details) VALUES ('clinic', 1, 'create', 'ana', "
        f'{T + 70}, NULL, \'{{"primary": "models:/diabetes@champion"}}\', NULL, NULL),'
        f" ('clinic', 2, 'canary', 'ana', {T + 80}, '{{\"primary\":"
        ' "models:/diabetes@champion"}\', \'{"primary": "models:/diabetes@champion",'
        ' "canary": "models:/diabetes/2", "canary_weight": 10}\', \'try v2\', NULL)',
    ],
    "0007": [
        "INSERT INTO monitors (id, name, reference, window_s, thresholds, webhooks, cooldown_s,"
        " created_at, updated_at, created_by) VALUES (1, 'clinic', 'datasets:/diabetes@1', 3600,"
        ' \'{"psi": 0.2, "ks": 0.1}\', \'["https://hooks.example.com/x"]\', 600,'
        f" {T + 90}, {T + 90}, 'ana')",
        "INSERT INTO alerts (monitor, kind, key, severity, message, payload, status, count,"
        " first_seen, last_seen, acknowledged_by, acknowledged_at, resolved_by, resolved_at,"
        " active_key) VALUES ('clinic', 'drift', 'bmi', 'warning', 'bmi drifted (PSI 0.31)',"
        f" '{{\"psi\": 0.31}}', 'open', 2, {T + 100}, {T + 110}, NULL, NULL, NULL, NULL,"
        " 'clinic|drift|bmi'), ('clinic', 'decay', 'mse', 'critical', 'mse 20% worse', NULL,"
        f" 'resolved', 1, {T + 95}, {T + 95}, 'bo', {T + 96}, 'bo', {T + 97}, NULL)",
    ],
    "0008": [
        'UPDATE monitors SET policy = \'{"pipeline": "/srv/project/pipelines/train.py",'
        ' "triggers": ["drift"]}\' WHERE name = \'clinic\'',
    ],
    "0009": [
        f"INSERT INTO users VALUES (1, 'alice', {T + 120}, NULL), (2, 'bob', {T + 130}, 'alice')",
        "INSERT INTO role_grants VALUES (1, '*', 'admin'), (2, 'diabetes', 'editor')",
        f"INSERT INTO api_tokens VALUES ('tok0000alice', 1, '{'a1' * 32}', 'laptop', {T + 121},"
        f" NULL, NULL, 'alice'), ('tok00000bob1', 2, '{'b2' * 32}', 'ci', {T + 131},"
        f" {T + 10_000_000}, {T + 140}, 'alice')",
    ],
}


def make(revision: str, path: Path) -> None:
    """``path`` upgraded to ``revision`` by alembic, then filled for every revision up to it."""
    from alembic import command
    from alembic.config import Config

    from triptych.store.sql.migrate import MIGRATIONS

    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA page_size = 512")  # small files: one page per table
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    with engine.begin() as conn:
        for rev in RELEASED[: RELEASED.index(revision) + 1]:
            for statement in SQL[rev]:
                conn.execute(text(statement))
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")
    engine.dispose()


def main() -> None:
    for revision in sys.argv[1:] or RELEASED:
        out = HERE / f"store-{revision}.db"
        make(revision, out)
        print(f"{out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
