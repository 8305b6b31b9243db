"""``triptych ui``: the web UI on the local store, on 127.0.0.1, opening a browser only where
one can open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from triptych.cli import ui
from triptych.testing.process import free_port


def test_ui_serves_the_local_store_on_loopback(isolated: Path) -> None:
    import triptych

    with triptych.start_run(experiment="local", name="<b>first</b>"):
        triptych.log_metric("mse", 3300.0)
    triptych.flush()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "triptych.cli.main", "ui", "--port", str(port), "--no-browser"],
        cwd=isolated,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/ui/experiments", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "triptych ui did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and ">local</a>" in response.text
        runs = httpx.get(f"http://127.0.0.1:{port}/ui/experiments/1/runs").text
        assert "&lt;b&gt;first&lt;/b&gt;" in runs
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/ui/" in err


def test_a_browser_opens_only_with_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not ui.has_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert ui.has_display()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    assert ui.has_display()


def test_the_browser_opens_once_the_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    from triptych.store.sql.store import SqlStore
    from triptych.testing.server import LiveServer

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    store = SqlStore("sqlite:///store.db")
    with LiveServer(store) as server:
        ui.open_when_listening(f"{server.url}/ui/")
        deadline = time.monotonic() + 10
        while not opened and time.monotonic() < deadline:
            time.sleep(0.05)
    store.close()
    assert opened == [f"{server.url}/ui/"]
