"""Deliver alerts to webhooks without letting a webhook URL reach inside the network (SSRF).

A webhook URL is written by whoever can create a monitor, and the process that delivers it
often runs next to databases and cloud metadata endpoints. So every hop is checked:

* only ``http`` and ``https``;
* the host is resolved once and *every* address must be public: private, loopback,
  link-local, multicast, reserved, unspecified, shared (CGNAT) addresses and IPv6 forms
  that embed one (IPv4-mapped, 6to4, NAT64) are refused, unless the host name or a CIDR
  containing the address is listed in the ``webhook_allow`` setting
  (``TRIPTYCH_WEBHOOK_ALLOW="hooks.internal,10.0.0.0/8"``);
* the connection goes to the checked address (no second DNS lookup, so a rebinding
  resolver cannot swap it), keeping the ``Host`` header and TLS SNI/certificate check of
  the name;
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each hop checked again.

URLs are logged redacted (scheme, host and port only): webhook paths and queries often
carry the secret.

Delivery runs on a small pool of background threads (:func:`deliver_in_background`): the
caller never waits. Each delivery is bounded (``timeout`` per attempt, ``retries`` retries
with exponential backoff on network errors, 429 and 5xx), so the pool drains in bounded time,
also at interpreter exit.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from triptych.errors import InvalidInput, PermissionDenied

log = logging.getLogger("triptych.webhooks")

MAX_REDIRECTS = 5
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = "allow it with TRIPTYCH_WEBHOOK_ALLOW=HOST or a CIDR (comma-separated)"


@dataclass(frozen=True)
class Allow:
    """Exceptions to the guard: host names (exact, lowercase) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> Allow:
        """Parse ``"hooks.internal, 127.0.0.1, 10.0.0.0/8"``. Raises InvalidInput."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in (text or "").split(","):
            item = item.strip().lower().strip("[]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if "/" in item or any(c.isspace() for c in item):
                    raise InvalidInput(
                        f"invalid entry {item!r} in the webhook allow list",
                        hint="use host names, addresses or CIDRs, e.g. 10.0.0.0/8",
                    ) from None
                hosts.add(item)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address in n for n in self.networks if n.version == address.version)


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery: ``ok`` when the last hop answered 2xx."""

    url: str  # redacted
    ok: bool
    status: int | None
    attempts: int
    error: str | None = None


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: what can be logged of a webhook URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{netloc}{rest}"


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` (and any IPv4 address it embeds) is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None and not is_public(inner):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver, like a connection would use,
    so ``127.1`` and ``0x7f000001`` resolve as they would there). Raises InvalidInput."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise InvalidInput(f"webhook host {host!r} does not resolve: {e}") from None
    seen: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 scope id
        address = ipaddress.ip_address(raw)
        if address not in seen:
            seen.append(address)
    if not seen:
        raise InvalidInput(f"webhook host {host!r} has no address")
    return seen


@dataclass(frozen=True)
class Target:
    """A checked hop: connect to ``address``, speak to ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def pinned_url(self) -> str:
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit((parts.scheme, f"{ip}:{self.port}", parts.path or "/", parts.query, ""))

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check(url: str, allow: Allow) -> Target:
    """Check one hop and pick the address to connect to. Raises InvalidInput (bad URL,
    unresolvable host) or PermissionDenied (an address the guard refuses)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"invalid webhook URL {redact_url(url)}: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(
            f"webhook URLs must be http:// or https://, got {parts.scheme or 'no'} scheme",
            hint="use https://host/path",
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidInput(f"webhook URL {redact_url(url)} has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    if host.strip("[]") not in allow.hosts:
        refused = [a for a in addresses if not is_public(a) and not allow.allows(a)]
        if refused:
            raise PermissionDenied(
                f"webhook {redact_url(url)} resolves to a non-public address ({refused[0]}): "
                "refused to protect the internal network",
                hint=_ALLOW_HINT,
            )
    return Target(url, parts.scheme, host, port, addresses[0])


def post(
    url: str,
    payload: Mapping[str, Any],
    *,
    allow: Allow | None = None,
    timeout: float = 5.0,
    retries: int = 2,
    backoff: float = 0.5,
    verify: ssl.SSLContext | bool = True,
) -> Delivery:
    """POST ``payload`` as JSON to ``url`` through the guard, now, in this thread.

    ``verify``: True (the system's CAs) or an SSL context (e.g. trusting an internal CA).
    Returns the outcome; raises only for a refused or malformed URL (InvalidInput,
    PermissionDenied), which no retry can fix."""
    import httpx

    allow = allow if allow is not None else _allow_from_settings()
    body = json.dumps(dict(payload), sort_keys=True, default=str).encode()
    safe = redact_url(url)
    attempts, status, error = 0, None, None
    # No keep-alive: a pooled connection is keyed by the pinned IP, and must not carry a hop
    # for another host name over a TLS session verified for the first.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, limits=limits, verify=verify
    ) as client:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            attempts += 1
            try:
                status = _send(client, url, body, allow)
                error = None
            except httpx.HTTPError as e:
                status, error = None, f"{type(e).__name__}"
            if status is not None and not (status == 429 or status >= 500):
                break
            log.info("webhook %s attempt %d failed: %s", safe, attempts, error or status)
    ok = status is not None and 200 <= status < 300
    result = Delivery(safe, ok, status, attempts, error)
    (log.info if ok else log.warning)("webhook %s delivered: %s", safe, status or error)
    return result


def _send(client: Any, url: str, body: bytes, allow: Allow) -> int:
    """One attempt: every hop checked, the connection pinned to the checked address."""
    method, content = "POST", body
    for _hop in range(MAX_REDIRECTS + 1):
        target = check(url, allow)
        headers = {"Host": target.host_header(), "User-Agent": "triptych-webhook"}
        if content:
            headers["Content-Type"] = "application/json"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        response = client.request(
            method, target.pinned_url(), content=content, headers=headers, extensions=extensions
        )
        response.close()
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return int(response.status_code)
        url = urljoin(url, location)
        if response.status_code in (301, 302, 303):
            method, content = "GET", b""
    raise PermissionDenied(
        f"webhook {redact_url(url)} redirected more than {MAX_REDIRECTS} times",
        hint="point the monitor at the final URL",
    )


def _allow_from_settings() -> Allow:
    from triptych.config import resolve as settings

    return Allow.parse(settings().webhook_allow)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def deliver_in_background(
    url: str, payload: Mapping[str, Any], *, allow: Allow | None = None, **options: Any
) -> Future[Delivery]:
    """Queue a :func:`post` on the background pool and return at once. The future holds the
    :class:`Delivery`; a refused URL is logged and resolves to a failed delivery."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="triptych-webhook")
    allow = allow if allow is not None else _allow_from_settings()

    def run() -> Delivery:
        try:
            return post(url, payload, allow=allow, **options)
        except (InvalidInput, PermissionDenied) as e:
            log.warning("webhook refused: %s", e.message)
            return Delivery(redact_url(url), False, None, 0, e.message)

    return _pool.submit(run)
