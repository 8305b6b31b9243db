"""The docs site: the CLI reference is generated from the commands and current, and the site
builds with mkdocs in strict mode (no broken page links, every API name resolves)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_current() -> None:
    from triptych.cli.reference import render

    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == render(), "regenerate: python -m triptych.cli.reference > docs/cli.md"


def test_every_command_is_in_the_reference() -> None:
    import typer

    from triptych.cli.main import app

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    ctx = root.make_context("triptych", [], resilient_parsing=True)
    for name in root.list_commands(ctx):  # type: ignore[attr-defined]
        assert f"`triptych {name}`" in text


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install mkdocs (the dev extra) to build the docs")
        pytest.skip("pip install -e '.[dev]' to build the docs site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "start_run" in api and "diagnose" in api  # mkdocstrings rendered the docstrings
