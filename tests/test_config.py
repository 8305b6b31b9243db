"""Settings resolution: argument > environment > triptych.toml > defaults, with sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from triptych import config
from triptych.errors import ConfigError


def test_defaults_live_under_dot_triptych(tmp_path: Path) -> None:
    s = config.resolve(environ={}, cwd=tmp_path)
    assert s.home == tmp_path / ".triptych"
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.triptych' / 'triptych.db'}"
    assert s.artifact_uri == str(tmp_path / ".triptych" / "artifacts")
    assert s.sources["home"] == "default" and s.config_file is None


def test_precedence_argument_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "triptych.toml").write_text(
        'tracking_uri = "sqlite:///from-file.db"\nartifact_uri = "file-artifacts"\n'
        "heartbeat_timeout = 120\n"
    )
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    env = {"TRIPTYCH_ARTIFACT_URI": "s3://bucket/env", "TRIPTYCH_HEARTBEAT_TIMEOUT": "30"}
    s = config.resolve({"heartbeat_timeout": 5}, environ=env, cwd=sub)
    assert s.project_root == tmp_path  # found by walking up from the cwd
    assert s.heartbeat_timeout == 5 and s.sources["heartbeat_timeout"] == "argument"
    assert s.artifact_uri == "s3://bucket/env"
    assert s.sources["artifact_uri"] == "env TRIPTYCH_ARTIFACT_URI"
    # relative paths in the file are relative to the file, not to the cwd
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'from-file.db'}"
    assert s.sources["tracking_uri"] == str(tmp_path / "triptych.toml")
    assert s.flush_interval == 1.0 and s.sources["flush_interval"] == "default"


def test_home_moves_the_defaults(tmp_path: Path) -> None:
    s = config.resolve(environ={"TRIPTYCH_HOME": str(tmp_path / "h")}, cwd=tmp_path)
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'h' / 'triptych.db'}"
    assert s.artifact_uri == str(tmp_path / "h" / "artifacts")
    assert s.sources["tracking_uri"] == "default (under home)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('tracking_url = "x"\n', "unknown setting"),
        ("flush_interval = -1\n", "invalid"),
        ("heartbeat_interval = 'soon'\n", "invalid"),
        ("this is not toml", "cannot read"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "triptych.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        config.resolve(environ={}, cwd=tmp_path)


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRIPTYCH_FLUSH_INTERVAL"):
        config.resolve(environ={"TRIPTYCH_FLUSH_INTERVAL": "fast"}, cwd=tmp_path)


def test_unknown_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        config.resolve({"trackin_uri": "x"}, environ={}, cwd=tmp_path)
