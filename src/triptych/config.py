"""Settings: one object, resolved argument > environment > ``triptych.toml`` > defaults.

Every value remembers where it came from so ``triptych info`` can say so. Nothing here runs at
import time: call :func:`resolve` when a command or API call needs settings.

pydantic-settings resolves sources too, but it cannot report which source won for each field,
and that report is the point of ``triptych info``; the rules below fit in one screen.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.errors import ConfigError

CONFIG_FILE = "triptych.toml"


@dataclass(frozen=True)
class Option:
    """One setting: its key, environment variable, parser and help text."""

    key: str
    env: str
    parse: Callable[[str], Any]
    help: str


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("home", "TRIPTYCH_HOME", str, "Folder for the embedded store and artifacts."),
    Option("tracking_uri", "TRIPTYCH_TRACKING_URI", str, "Metadata store URL."),
    Option("artifact_uri", "TRIPTYCH_ARTIFACT_URI", str, "Artifact store root (file:// or s3://)."),
    Option(
        "tracking_token",
        "TRIPTYCH_TRACKING_TOKEN",
        str,
        "API token sent to a triptych server started with --auth (environment only).",
    ),
    Option(
        "s3_endpoint_url",
        "TRIPTYCH_S3_ENDPOINT_URL",
        str,
        "S3-compatible endpoint (MinIO, moto, Ceph…); empty for AWS.",
    ),
    Option(
        "flush_interval",
        "TRIPTYCH_FLUSH_INTERVAL",
        _positive_float,
        "Seconds between background flushes of logged metrics, params and tags.",
    ),
    Option(
        "heartbeat_interval",
        "TRIPTYCH_HEARTBEAT_INTERVAL",
        _positive_float,
        "Seconds between heartbeats of a running run.",
    ),
    Option(
        "heartbeat_timeout",
        "TRIPTYCH_HEARTBEAT_TIMEOUT",
        _positive_float,
        "Seconds without heartbeat after which a RUNNING run is marked FAILED.",
    ),
    Option(
        "trusted_types",
        "TRIPTYCH_TRUSTED_TYPES",
        str,
        "Extra types (comma-separated, module.Type or module.* prefixes) model files may contain.",
    ),
    Option(
        "webhook_allow",
        "TRIPTYCH_WEBHOOK_ALLOW",
        str,
        "Hosts and CIDRs (comma-separated) alert webhooks may reach although private/loopback.",
    ),
)
_BY_KEY = {o.key: o for o in OPTIONS}

SECRETS = frozenset({"tracking_token"})  # never read from triptych.toml, never printed

DEFAULTS: dict[str, Any] = {
    "tracking_token": "",
    "s3_endpoint_url": "",
    "flush_interval": 1.0,
    "heartbeat_interval": 10.0,
    "heartbeat_timeout": 60.0,
    "trusted_types": "",
    "webhook_allow": "",
}


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``sources[key]`` says where each value came from."""

    home: Path
    tracking_uri: str
    artifact_uri: str
    tracking_token: str
    s3_endpoint_url: str
    flush_interval: float
    heartbeat_interval: float
    heartbeat_timeout: float
    trusted_types: str
    webhook_allow: str
    project_root: Path
    config_file: Path | None
    sources: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for ``--json`` output; secrets show as ``***`` when set."""
        return {
            o.key: ("***" if getattr(self, o.key) else "")
            if o.key in SECRETS
            else _plain(getattr(self, o.key))
            for o in OPTIONS
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"Settings({shown})"


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``triptych.toml`` in ``start`` or its parents, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_config_file(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", hint="fix the TOML syntax") from e
    section = data.get("triptych", data)
    unknown = sorted(k for k, v in section.items() if k not in _BY_KEY and not isinstance(v, dict))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} in {path}",
            hint=f"known settings: {', '.join(_BY_KEY)}",
        )
    secret = sorted(k for k in section if k in SECRETS)
    if secret:
        raise ConfigError(
            f"{', '.join(secret)} does not belong in {path}: the file is shared, a token is not",
            hint=f"set {', '.join(_BY_KEY[k].env for k in secret)} in the environment instead",
        )
    return {k: v for k, v in section.items() if k in _BY_KEY}


def _parse(option: Option, raw: Any, origin: str) -> Any:
    if isinstance(raw, (int, float)) and option.parse is _positive_float:
        raw = str(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{option.key} from {origin} must be a string, got {raw!r}")
    try:
        return option.parse(raw)
    except ValueError as e:
        raise ConfigError(f"{option.key} from {origin} is invalid: {raw!r} ({e})") from e


def _as_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _relative_to_file(key: str, value: str, base: Path) -> str:
    """Relative paths in triptych.toml mean relative to that file, not to the cwd."""
    if key == "home":
        return str(_as_path(value, base))
    if key == "tracking_uri" and value.startswith("sqlite:///") and value != "sqlite:///:memory:":
        target = value[len("sqlite:///") :]
        if not Path(target).is_absolute():
            return _sqlite_url(base / target)
    if key == "artifact_uri" and "://" not in value:
        return str(_as_path(value, base))
    return value


def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve every setting: explicit ``overrides`` > environment > triptych.toml > defaults."""
    env = os.environ if environ is None else environ
    cwd = (cwd or Path.cwd()).resolve()
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    bad = sorted(set(overrides) - set(_BY_KEY))
    if bad:
        raise ConfigError(f"unknown setting(s): {', '.join(bad)}")

    config_file = find_config_file(cwd)
    project_root = config_file.parent if config_file else cwd
    from_file = _read_config_file(config_file) if config_file else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if option.key in overrides:
            raw, origin = overrides[option.key], "argument"
            if option.parse is _positive_float:
                raw = _parse(option, raw, origin)
            values[option.key] = raw
        elif env.get(option.env):
            origin = f"env {option.env}"
            values[option.key] = _parse(option, env[option.env], origin)
        elif option.key in from_file:
            origin = str(config_file)
            assert config_file is not None
            value = _parse(option, from_file[option.key], origin)
            if isinstance(value, str):
                value = _relative_to_file(option.key, value, config_file.parent)
            values[option.key] = value
        else:
            continue
        sources[option.key] = origin

    home = _as_path(str(values.get("home", project_root / ".triptych")), cwd).resolve()
    sources.setdefault("home", "default")
    tracking = values.get("tracking_uri") or _sqlite_url(home / "triptych.db")
    sources.setdefault("tracking_uri", "default (under home)")
    artifacts = values.get("artifact_uri") or str(home / "artifacts")
    sources.setdefault("artifact_uri", "default (under home)")
    for key, default in DEFAULTS.items():
        values.setdefault(key, default)
        sources.setdefault(key, "default")

    return Settings(
        home=home,
        tracking_uri=str(tracking),
        artifact_uri=str(artifacts),
        tracking_token=str(values["tracking_token"]),
        s3_endpoint_url=str(values["s3_endpoint_url"]),
        flush_interval=float(values["flush_interval"]),
        heartbeat_interval=float(values["heartbeat_interval"]),
        heartbeat_timeout=float(values["heartbeat_timeout"]),
        trusted_types=str(values["trusted_types"]),
        webhook_allow=str(values["webhook_allow"]),
        project_root=project_root,
        config_file=config_file,
        sources=sources,
    )
