"""User-given artifact paths, normalised once and kept inside their root.

A run's artifact path is a logical key (``plots/loss.png``), never a filesystem path: blobs
are stored under their digest, so no user text ever reaches the storage layout. Still, paths
come back out when artifacts are downloaded into a folder, so every form that could escape a
root on some system is refused here, once, with a clear error: ``..`` segments, absolute and
drive paths, backslashes, percent-encoding (``%2e%2e``, ``%252e``), NUL and control
characters. Downloads additionally resolve symlinks (:func:`inside`).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from triptych.errors import UnsafePath

MAX_PATH = 1024
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: every Unicode Cc
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def normalise(path: str, *, allow_empty: bool = False) -> str:
    """The canonical form of a run-relative artifact path, or :class:`UnsafePath`.

    ``a//b/./c/`` becomes ``a/b/c``; anything that could point outside the run is refused.
    ``allow_empty`` accepts ``""`` (the run's root) for listings.
    """
    if not isinstance(path, str):
        raise UnsafePath(f"artifact path must be a string, got {type(path).__name__}")
    shown = path.encode("unicode_escape").decode("ascii")[:200]
    if _CONTROL.search(path):
        raise UnsafePath(f"artifact path {shown!r} contains NUL or control characters")
    if "\\" in path:
        raise UnsafePath(f"artifact path {shown!r} contains a backslash", hint="use '/'")
    if _PERCENT.search(path):
        raise UnsafePath(
            f"artifact path {shown!r} contains percent-encoding",
            hint="give the decoded name; encoded forms such as %2e%2e are refused",
        )
    if _SURROGATE.search(path):
        raise UnsafePath(f"artifact path {shown!r} is not valid Unicode (a lone surrogate)")
    text = unicodedata.normalize("NFC", path)
    if text.startswith("/"):
        raise UnsafePath(f"artifact path {shown!r} is absolute", hint="give a path inside the run")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePath(f"artifact path {shown!r} climbs out with '..'")
    if any(p.strip(" .") == "" for p in parts):
        raise UnsafePath(f"artifact path {shown!r} has a segment of only dots or spaces")
    clean = "/".join(parts)
    # Checked on the result, so that ``./~/x`` or ``./C:/x`` cannot slip through to a form
    # that a second normalise (at download) would refuse.
    if clean.startswith("~"):
        raise UnsafePath(
            f"artifact path {shown!r} starts with '~', a home folder to shells",
            hint="give a path inside the run",
        )
    if _DRIVE.match(clean):
        raise UnsafePath(
            f"artifact path {shown!r} starts with a drive letter", hint="give a path inside the run"
        )
    if not clean and not allow_empty:
        raise UnsafePath("artifact path is empty", hint="name a file inside the run")
    if len(clean) > MAX_PATH:
        raise UnsafePath(f"artifact path is {len(clean)} characters; the limit is {MAX_PATH}")
    return clean


def join(*parts: str | None) -> str:
    """Join path pieces and normalise the result once."""
    return normalise("/".join(p for p in parts if p))


def inside(root: Path, relative: str) -> Path:
    """``root / relative`` after resolving symlinks, refused when it lands outside ``root``."""
    base = root.resolve()
    target = (base / normalise(relative)).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"{relative!r} resolves outside {root} (through a symlink?)")
    return target


def local_files(folder: Path) -> list[tuple[Path, str]]:
    """Files under ``folder`` with their relative paths; symlinks leaving ``folder`` refused.

    Symlinks that stay inside are followed (a linked file or folder is logged under the link's
    name); a link back to a folder it sits in adds nothing, so loops end.
    """
    base = folder.resolve()
    out: list[tuple[Path, str]] = []

    def resolve_inside(link: Path) -> Path:
        target = link.resolve()
        if target != base and base not in target.parents:
            raise UnsafePath(f"{link} is a symlink to {target}, outside {folder}")
        return target

    def walk(real: Path, prefix: str, enclosing: tuple[Path, ...]) -> None:
        # ``real`` is a resolved folder shown at ``prefix``; ``enclosing`` holds the folders of
        # the links being followed, which a link must not lead back above.
        for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
            here = Path(dirpath)
            shown = f"{prefix}/{here.relative_to(real).as_posix()}"
            for name in sorted(dirnames):
                link = here / name
                if not link.is_symlink():
                    continue
                target = resolve_inside(link)
                if any(target == d or target in d.parents for d in (*enclosing, here)):
                    continue  # a loop back to a folder we are in adds no files
                walk(target, f"{shown}/{name}", (*enclosing, here))
            for name in sorted(filenames):
                file = here / name
                out.append((resolve_inside(file), normalise(f"{shown}/{name}")))

    walk(base, ".", ())
    return out
