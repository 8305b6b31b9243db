"""``triptych ui``: the web UI on the local store (the pages are in triptych.server.ui)."""

from __future__ import annotations

import typer


def ui(
    port: int = typer.Option(5000, "--port", "-p", help="Port to listen on (127.0.0.1 only)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
) -> None:
    """Open the web UI on the local store: runs, models, deployments, at http://127.0.0.1:PORT.
    Serves until Ctrl-C; the same pages are part of `triptych server`."""
    from triptych import config
    from triptych.cli import output
    from triptych.server.process import serve
    from triptych.server.settings import ServerSettings
    from triptych.uris import redact

    resolved = config.resolve()
    settings = ServerSettings(
        store=resolved.tracking_uri,
        artifacts=resolved.artifact_uri,
        host="127.0.0.1",
        port=port,
    )
    url = f"http://127.0.0.1:{port}/ui/"
    console = output.console(stderr=True)

    def ready() -> None:
        console.print(
            f"triptych UI on [bold]{url}[/] · store {output.escape(redact(settings.store))}"
        )
        console.print("  Ctrl-C to stop")
        if not no_browser and has_display():
            open_when_listening(url)

    serve(settings, on_ready=ready)


def has_display() -> bool:
    """Whether a browser window can open here: always on macOS and Windows, on other systems
    only with an X11 or Wayland display (not over plain SSH, not in a container)."""
    import os
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_when_listening(url: str, timeout: float = 15.0) -> None:
    """Open ``url`` in the default browser once the server answers (from a thread: the
    server starts listening after this returns)."""
    import threading

    def wait_then_open() -> None:
        import time
        import webbrowser

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(url.replace("/ui/", "/health"), timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            webbrowser.open(url)
            return

    threading.Thread(target=wait_then_open, name="open-browser", daemon=True).start()
