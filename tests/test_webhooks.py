"""The webhook SSRF guard, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from triptych.errors import InvalidInput, PermissionDenied
from triptych.monitoring import webhooks
from triptych.monitoring.webhooks import Allow, check, deliver_in_background, post
from webhook_kit import Receiver

LOCAL = Allow.parse("127.0.0.1")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_allowed_loopback_receives_the_json(receiver: Receiver) -> None:
    result = post(f"{receiver.url}/hook?token=s3cret", {"alert": {"id": 1}}, allow=LOCAL)
    assert (result.ok, result.status, result.attempts) == (True, 200, 1)
    (req,) = receiver.requests
    assert (req["method"], req["path"], req["body"]) == (
        "POST",
        "/hook?token=s3cret",
        {"alert": {"id": 1}},
    )
    assert req["host"] == f"127.0.0.1:{receiver.port}"
    assert result.url == f"http://127.0.0.1:{receiver.port}/…"  # the token is not in the record


def test_loopback_is_refused_unless_allowed(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PermissionDenied, match="non-public") as e:
        post(f"{receiver.url}/hook", {"x": 1}, allow=Allow())
    assert "TRIPTYCH_WEBHOOK_ALLOW" in (e.value.hint or "")
    assert receiver.requests == []
    # the setting, read through triptych.config
    monkeypatch.setenv("TRIPTYCH_WEBHOOK_ALLOW", "10.0.0.0/8, 127.0.0.0/8")
    assert post(f"{receiver.url}/hook", {"x": 1}).ok
    assert len(receiver.requests) == 1


def test_connection_is_pinned_to_the_checked_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebinding resolver answers once: the name is resolved once per hop, the connection
    goes to that address, and the Host header keeps the name."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":
            lookups.append(host)
            if len(lookups) > 1:  # a second lookup would get the metadata service
                return real("169.254.169.254", port, *args, **kwargs)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://hooks.example.test:{receiver.port}/in"
    assert post(url, {"x": 1}, allow=LOCAL).ok
    assert lookups == ["hooks.example.test"]
    assert receiver.requests[0]["host"] == f"hooks.example.test:{receiver.port}"


def test_redirects_are_followed_and_checked(receiver: Receiver) -> None:
    receiver.script["/moved"] = [(307, "/final")]
    assert post(f"{receiver.url}/moved", {"x": 1}, allow=LOCAL).ok
    assert [(r["method"], r["path"], r["body"]) for r in receiver.requests] == [
        ("POST", "/moved", {"x": 1}), ("POST", "/final", {"x": 1}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:80/",
        "http://127.0.0.2/",
    ],
)
def test_redirect_to_a_private_address_is_refused(receiver: Receiver, location: str) -> None:
    receiver.script["/evil"] = [(302, location)]
    with pytest.raises(PermissionDenied, match="non-public"):
        post(f"{receiver.url}/evil", {"x": 1}, allow=Allow.parse("127.0.0.1/32"))
    assert [r["path"] for r in receiver.requests] == ["/evil"]


def test_redirect_loops_stop(receiver: Receiver) -> None:
    receiver.script["/loop"] = [(302, "/loop")] * 20
    with pytest.raises(PermissionDenied, match="redirected more than"):
        post(f"{receiver.url}/loop", {"x": 1}, allow=LOCAL)
    assert len(receiver.requests) == webhooks.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",
        "http://127.1/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:7f00:1]/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "https://user:pw@127.0.0.1:8443/x",
    ],
)
def test_private_loopback_and_link_local_hosts_are_refused(url: str) -> None:
    with pytest.raises(PermissionDenied) as e:
        check(url, Allow())
    assert "pw" not in str(e.value)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:alert(1)",
     "example.com/hook", "http:///nohost", "http://example.com:99999/"],
)  # fmt: skip
def test_bad_schemes_and_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check(url, Allow())


def test_public_addresses_pass_and_allow_lists_parse() -> None:
    target = check("https://93.184.215.14/hook", Allow())  # a literal: no DNS needed
    assert (target.host, target.port, str(target.address)) == (
        "93.184.215.14",
        443,
        "93.184.215.14",
    )
    allow = Allow.parse(" Hooks.Internal , 10.0.0.0/8,[::1] ")
    assert allow.hosts == {"hooks.internal"} and len(allow.networks) == 2
    with pytest.raises(InvalidInput, match="allow list"):
        Allow.parse("10.0.0.0/33")


def test_server_errors_are_retried_with_backoff(receiver: Receiver) -> None:
    receiver.script["/flaky"] = [(500, None), (503, None)]
    result = post(f"{receiver.url}/flaky", {"x": 1}, allow=LOCAL, retries=2, backoff=0.01)
    assert (result.ok, result.attempts) == (True, 3)
    receiver.script["/down"] = [(500, None)] * 5
    result = post(f"{receiver.url}/down", {"x": 1}, allow=LOCAL, retries=1, backoff=0.01)
    assert (result.ok, result.status, result.attempts) == (False, 500, 2)
    receiver.script["/gone"] = [(404, None)]
    assert post(f"{receiver.url}/gone", {"x": 1}, allow=LOCAL, retries=3).attempts == 1


def test_unreachable_host_fails_quietly_in_background(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.INFO, logger="triptych.webhooks")
    future = deliver_in_background(
        f"http://127.0.0.1:{port}/secret-path", {"x": 1}, allow=LOCAL, retries=1, backoff=0.01
    )
    result = future.result(timeout=30)
    assert (result.ok, result.status, result.attempts) == (False, None, 2)
    assert "ConnectError" in (result.error or "")
    refused = deliver_in_background("http://10.0.0.1/secret-path", {"x": 1}, allow=Allow())
    assert refused.result(timeout=30).ok is False
    assert "secret-path" not in caplog.text and "refused" in caplog.text


def test_https_is_pinned_and_verified_against_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to the checked IP keeps TLS honest: SNI and the certificate check use the
    host name, so the name's certificate passes and the bare IP does not."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hooks.example.test", "-addext", "subjectAltName=DNS:hooks.example.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "hooks.example.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    trusted = ssl.create_default_context(cafile=str(cert))
    with Receiver(tls=(str(cert), str(key))) as r:
        named = f"https://hooks.example.test:{r.port}/in"
        assert post(named, {"x": 1}, allow=LOCAL, verify=trusted).ok
        assert r.requests[0]["host"] == f"hooks.example.test:{r.port}"
        bare = post(f"https://127.0.0.1:{r.port}/in", {"x": 1}, allow=LOCAL, verify=trusted,
                    retries=0)  # fmt: skip
        assert not bare.ok and bare.status is None  # certificate is not for 127.0.0.1
        assert not post(named, {"x": 1}, allow=LOCAL, retries=0).ok  # untrusted by system CAs
        assert len(r.requests) == 1
