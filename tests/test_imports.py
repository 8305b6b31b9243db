"""``import triptych`` and ``triptych --help`` stay light: no heavy library at start."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "sklearn", "sqlalchemy", "fastapi", "numpy", "pyarrow", "alembic", "rich")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_import_triptych_is_light() -> None:
    assert not _loaded_after("import triptych") & set(HEAVY)


def test_cli_help_is_light() -> None:
    code = (
        "from triptych.cli.main import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    )
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY) - {"rich"}, loaded & set(HEAVY)
