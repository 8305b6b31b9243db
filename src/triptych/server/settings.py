"""What ``triptych server`` was asked for, handed to each worker process as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from triptych.errors import InvalidInput

SETTINGS_ENV = "TRIPTYCH_SERVER_SETTINGS"  # how `--workers N` hands the settings to each worker


@dataclass(frozen=True)
class ServerSettings:
    """The team server's settings; ``store`` and ``artifacts`` are URLs (resolved ones)."""

    store: str
    artifacts: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    access_log: bool = False
    title: str = "triptych"
    max_body: int = 64 * 1024 * 1024  # bytes of one JSON request (blob uploads stream to disk)
    auth: bool = False  # users, API tokens and roles (TokenPolicy); off: everything is allowed
    allowed_hosts: tuple[str, ...] = ()  # Host headers answered; empty: the bind address's

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))  # JSON gives a list

    def hosts(self) -> list[str]:
        """The Host-header allowlist: ``allowed_hosts``, or the bind address and the forms of
        localhost (with the machine's names when bound to every interface)."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        names = ["localhost", "127.0.0.1", "::1", "[::1]"]
        if self.host in ("0.0.0.0", "::", ""):
            import socket

            names += [socket.gethostname(), socket.getfqdn()]
        elif self.host not in names:
            names.append(self.host if ":" not in self.host else f"[{self.host}]")
        return list(dict.fromkeys(names))

    def check(self) -> None:
        from triptych.uris import scheme_of

        if self.workers < 1:
            raise InvalidInput(f"--workers must be at least 1, got {self.workers}")
        if self.max_body < 1:
            raise InvalidInput(f"the body-size limit must be positive, got {self.max_body}")
        for host in self.allowed_hosts:
            if not host or "/" in host or " " in host:
                raise InvalidInput(f"invalid --allowed-host {host!r}", hint="a host name, or *")
        if not 0 < self.port < 65536:
            raise InvalidInput(f"invalid port {self.port}")
        if scheme_of(self.store) in ("http", "https"):
            raise InvalidInput(
                f"the server's own store cannot be another server ({self.store})",
                hint="give it a database: --store sqlite:///path.db or postgresql+psycopg://…",
            )

    def to_env(self) -> None:
        os.environ[SETTINGS_ENV] = json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        try:
            return cls(**json.loads(os.environ[SETTINGS_ENV]))
        except KeyError:
            raise InvalidInput(
                f"{SETTINGS_ENV} is not set", hint="start with `triptych server`"
            ) from None
