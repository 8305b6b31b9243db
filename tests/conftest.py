"""Shared fixtures: an isolated triptych home per test, real PostgreSQL and real S3 (moto)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from triptych.testing import reset_process_state

POSTGRES_ENV = "TRIPTYCH_TEST_POSTGRES_URL"
_SETTINGS_ENV = (
    "TRIPTYCH_HOME",
    "TRIPTYCH_TRACKING_URI",
    "TRIPTYCH_ARTIFACT_URI",
    "TRIPTYCH_S3_ENDPOINT_URL",
    "TRIPTYCH_FLUSH_INTERVAL",
    "TRIPTYCH_HEARTBEAT_INTERVAL",
    "TRIPTYCH_HEARTBEAT_TIMEOUT",
    "TRIPTYCH_EXPERIMENT",
    "TRIPTYCH_TRUSTED_TYPES",
    "TRIPTYCH_USER",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test runs in its own folder with default settings and fresh process state."""
    for name in _SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    reset_process_state()
    yield tmp_path
    reset_process_state()


def _admin_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL server under test; skips (or fails in CI) without one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {POSTGRES_ENV}: PostgreSQL tests may not be skipped")
        pytest.skip(f"set {POSTGRES_ENV}=postgresql+psycopg://user@host/db to run PostgreSQL tests")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from triptych.store.sql.engine import normalise_url

    server = normalise_url(postgres_server)
    name = f"triptych_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # A language-aware collation, as most production servers have, so that tests catch
        # queries whose meaning depends on it; plain CREATE where ICU is unavailable.
        try:
            conn.execute(
                text(
                    f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                    "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                )
            )
        except Exception:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        reset_process_state()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP endpoint on loopback (moto in server mode)."""
    pytest.importorskip("s3fs", reason="S3 tests need: pip install 'triptych[s3]'")
    server_mod = pytest.importorskip("moto.server", reason="S3 tests need moto[server]")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the moto endpoint; returns ``s3://bucket/prefix``."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"triptych-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return f"s3://{bucket}/artifacts"


# -- the gauntlet's counts (tests/test_gauntlet_*.py), printed at the end of every run ----------
GAUNTLET_COUNTS = pytest.StashKey[dict[str, int]]()


@pytest.fixture(scope="session")
def gauntlet(pytestconfig: pytest.Config) -> dict[str, int]:
    """Counters the gauntlet suites add to ("paths tried", "faults injected", "rows lost")."""
    return pytestconfig.stash.setdefault(GAUNTLET_COUNTS, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    counts = config.stash.get(GAUNTLET_COUNTS, {})
    if counts:
        terminalreporter.write_sep("-", "gauntlet")
        for name, value in counts.items():
            terminalreporter.write_line(f"{name}: {value}")
