"""Artifact paths: hostile forms refused once with UnsafePath, through the API too.

An artifact path is a logical key (``plots/loss.png``) that comes back out as a file name when
artifacts are downloaded, so every form that could leave a folder on some system is refused:
by :func:`paths.normalise` itself, by every public call that takes a path, and by symlinks
met on either side (a folder being logged, a folder being downloaded into).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import triptych
from triptych.artifacts import paths
from triptych.errors import InvalidInput, NotFound, UnsafePath

# (path, fragment of the message) - every one refused by normalise.
HOSTILE: list[tuple[str, str]] = [
    ("..", "climbs out with '..'"),
    ("../x", "climbs out with '..'"),
    ("a/../../x", "climbs out with '..'"),
    ("a/..", "climbs out with '..'"),
    ("/etc/passwd", "is absolute"),
    ("//host/share", "is absolute"),
    ("C:\\x", "contains a backslash"),
    ("C:/x", "starts with a drive letter"),
    ("c:x", "starts with a drive letter"),
    ("a\\..\\b", "contains a backslash"),
    ("\\\\host\\share", "contains a backslash"),
    ("%2e%2e/x", "contains percent-encoding"),
    ("%252e%252e/x", "contains percent-encoding"),
    ("..%2fx", "contains percent-encoding"),
    ("a/%2e%2e/b", "contains percent-encoding"),
    ("a/%2F/b", "contains percent-encoding"),
    ("a\x00b", "NUL or control characters"),
    ("a\x01b", "NUL or control characters"),
    ("a\nb", "NUL or control characters"),
    ("a\rb", "NUL or control characters"),
    ("a\tb", "NUL or control characters"),
    ("a\x1b[2Jb", "NUL or control characters"),
    ("a\x7fb", "NUL or control characters"),
    ("a\x85b", "NUL or control characters"),  # C1 (NEL)
    ("a\x9bb", "NUL or control characters"),  # C1 (CSI)
    ("a\ud800b", "lone surrogate"),
    ("~/x", "starts with '~'"),
    ("~", "starts with '~'"),
    ("./~/x", "starts with '~'"),  # was accepted as '~/x', then refused at download
    ("./C:/x", "starts with a drive letter"),  # same
    (".//~", "starts with '~'"),
    ("a/ /b", "only dots or spaces"),
    (" ", "only dots or spaces"),
    ("...", "only dots or spaces"),
    ("a/.../b", "only dots or spaces"),
    (". ./x", "only dots or spaces"),
    ("", "is empty"),
    (".", "is empty"),
    ("./", "is empty"),
    ("//", "is absolute"),
    ("a" * (paths.MAX_PATH + 1), "the limit is"),
]
# Forms that, where an empty path means "the whole run" (listing, downloading, a folder to log
# into), name the run's root instead of being refused.
ROOT_FORMS = {"", ".", "./"}

ACCEPTED: list[tuple[str, str]] = [
    ("a", "a"),
    ("a//b/./c/", "a/b/c"),
    ("./a", "a"),
    ("a/./b", "a/b"),
    ("plots/loss.png", "plots/loss.png"),
    ("données/été.csv", "données/été.csv"),
    ("e\u0301.txt", "\u00e9.txt"),  # NFC: one spelling per name
    ("模型/权重.bin", "模型/权重.bin"),
    ("my file.txt", "my file.txt"),
    ("a /b", "a /b"),  # a space inside a segment is part of the name
    ("a#b;c.txt", "a#b;c.txt"),  # '#' and ';' are literal: paths are keys, not URLs
    ("q?x=1&y=2", "q?x=1&y=2"),
    ("50%", "50%"),  # a lone '%' is not an encoding
    ("x/~", "x/~"),
    ("a~b", "a~b"),
    ("...a", "...a"),
    ("a..b", "a..b"),
    (".hidden", ".hidden"),
    ("a/.git/b", "a/.git/b"),
    ("a/C:/b", "a/C:/b"),  # a drive only counts at the start
    ("ab:c", "ab:c"),
    ("a" * paths.MAX_PATH, "a" * paths.MAX_PATH),
]


def _id(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")[:40] or "<empty>"


# -- normalise ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "why"), HOSTILE, ids=[_id(p) for p, _ in HOSTILE])
def test_hostile_paths_are_refused_with_a_clear_message(path: str, why: str) -> None:
    with pytest.raises(UnsafePath) as info:
        paths.normalise(path)
    assert isinstance(info.value, InvalidInput)
    assert why in str(info.value)
    assert "\x00" not in str(info.value)  # control characters are shown escaped


@pytest.mark.parametrize(("path", "canonical"), ACCEPTED, ids=[_id(p) for p, _ in ACCEPTED])
def test_accepted_paths_and_their_canonical_form(path: str, canonical: str) -> None:
    assert paths.normalise(path) == canonical
    assert paths.normalise(canonical) == canonical


@pytest.mark.parametrize("path", sorted(ROOT_FORMS))
def test_empty_forms_name_the_root_only_when_allowed(path: str) -> None:
    assert paths.normalise(path, allow_empty=True) == ""
    with pytest.raises(UnsafePath, match="is empty"):
        paths.normalise(path)


@pytest.mark.parametrize("value", [None, b"a", 1, Path("a")])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(UnsafePath, match="must be a string"):
        paths.normalise(value)  # type: ignore[arg-type]


def test_join_normalises_once() -> None:
    assert paths.join(None, "f.txt") == "f.txt"
    assert paths.join("", "f.txt") == "f.txt"
    assert paths.join("a/", "/b", "c") == "a/b/c"
    assert paths.join("plots", "loss.png") == "plots/loss.png"
    for folder in ("..", "/etc", "~", "C:", "a/%2e%2e", " "):
        with pytest.raises(UnsafePath):
            paths.join(folder, "f.txt")


# -- inside -------------------------------------------------------------------------------------
def test_inside_resolves_within_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert paths.inside(root, "a/b.txt") == root.resolve() / "a" / "b.txt"
    assert paths.inside(root, "alias/f") == root.resolve() / "real" / "f"


def test_inside_refuses_symlinks_leading_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(outside / "not-yet.txt")  # target does not exist yet
    (root / "up").symlink_to("..", target_is_directory=True)
    for rel in ("out/f.txt", "dangling", "up/outside/f.txt"):
        with pytest.raises(UnsafePath, match="resolves outside"):
            paths.inside(root, rel)
    with pytest.raises(UnsafePath):
        paths.inside(root, "../outside/f.txt")


# -- property -----------------------------------------------------------------------------------
_PIECES = st.sampled_from(
    [
        *("a", "b", "é", "e\u0301", ".", "..", "...", "/", "//", "\\", "~", "C:", ":", "%"),
        *("%2e", "%25", " ", "\x00", "\x1f", "\x85", "\ud800", "\u2028", "\uff0e", "#", "?"),
    ]
)
_PATHS = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(_PIECES, max_size=12).map("".join),
)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=_PATHS)
def test_normalise_is_safe_and_idempotent(raw: str, tmp_path: Path) -> None:
    try:
        p = paths.normalise(raw)
    except UnsafePath:
        return
    root = tmp_path.resolve()
    target = paths.inside(root, p)
    assert target.is_relative_to(root) and target != root
    segments = p.split("/")
    assert ".." not in segments and "" not in segments and "." not in segments
    assert not p.startswith(("/", "~"))
    assert "\\" not in p and "\x00" not in p
    assert p.encode("utf-8")  # storable anywhere
    assert paths.normalise(p) == p


# -- the public API, end to end -----------------------------------------------------------------
def _tree(folder: Path) -> set[tuple[str, int]]:
    """Every entry under ``folder`` (files with their size; links and dirs as -1)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            size = p.lstat().st_size if p.is_file() and not p.is_symlink() else -1
            out.add((str(p.relative_to(folder)), size))
    return out


@pytest.fixture
def client() -> triptych.Client:
    return triptych.Client()


@pytest.fixture
def run_id(client: triptych.Client) -> str:
    return client.create_run(client.create_experiment("paths"), capture=False).run_id


def _blobs(client: triptych.Client) -> list[Path]:
    root = Path(client.settings.artifact_uri) / "blobs"
    return [p for p in root.rglob("*") if p.is_file()]


API_HOSTILE = [(p, w) for p, w in HOSTILE if p not in ROOT_FORMS]


@pytest.mark.parametrize(("path", "why"), API_HOSTILE, ids=[_id(p) for p, _ in API_HOSTILE])
def test_public_api_refuses_hostile_paths_and_writes_nothing(
    path: str, why: str, client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"payload")
    dst = tmp_path / "dst"
    client.list_artifacts(run_id)  # open everything the calls below could open
    before = _tree(tmp_path)
    siblings = set(os.listdir(tmp_path.parent))

    calls = {
        "log_bytes": lambda: client.log_bytes(run_id, b"x", path),
        "log_text": lambda: client.log_text(run_id, "x", path),
        "log_artifact": lambda: client.log_artifact(run_id, source, artifact_path=path),
        "list_artifacts": lambda: client.list_artifacts(run_id, path),
        "read_artifact": lambda: client.read_artifact(run_id, path),
        "download_artifacts": lambda: client.download_artifacts(run_id, path, dst),
    }
    for name, call in calls.items():
        with pytest.raises(UnsafePath) as info:
            call()
        assert "artifact path" in str(info.value), name

    assert _tree(tmp_path) == before
    assert set(os.listdir(tmp_path.parent)) == siblings
    assert not dst.exists()
    assert client.list_artifacts(run_id) == []
    assert _blobs(client) == []


@pytest.mark.parametrize("path", sorted(ROOT_FORMS))
def test_empty_forms_mean_the_whole_run(
    path: str, client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"payload")
    with pytest.raises(NotFound):
        client.download_artifacts(run_id, path, tmp_path / "empty")
    with pytest.raises(UnsafePath, match="is empty"):
        client.log_bytes(run_id, b"x", path)
    with pytest.raises(UnsafePath, match="is empty"):
        client.read_artifact(run_id, path)
    entry = client.log_artifact(run_id, source, artifact_path=path)
    assert entry.path == "f.txt"
    assert [e.path for e in client.list_artifacts(run_id, path)] == ["f.txt"]
    out = client.download_artifacts(run_id, path, tmp_path / "dst")
    assert (out / "f.txt").read_bytes() == b"payload"


def test_accepted_names_round_trip_through_the_api(
    client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    names = ["a#b;c.txt", "my file.txt", "données/été.csv", "q?x=1&y=2", "50%", "x/~"]
    for i, name in enumerate(names):
        client.log_bytes(run_id, f"{i}".encode(), name)
    client.log_bytes(run_id, b"nfc", "e\u0301.txt")
    stored = {e.path for e in client.store.walk_artifacts(run_id)}
    assert stored == {*names, "\u00e9.txt"}
    assert client.read_artifact(run_id, "\u00e9.txt") == b"nfc"  # either spelling finds it
    assert client.read_artifact(run_id, "e\u0301.txt") == b"nfc"
    assert client.read_artifact(run_id, "./a#b;c.txt") == b"0"
    dst = client.download_artifacts(run_id, "", tmp_path / "dst")
    for i, name in enumerate(names):
        assert (dst / name).read_bytes() == f"{i}".encode()
    assert (dst / "\u00e9.txt").read_bytes() == b"nfc"


def test_a_path_accepted_at_log_time_can_always_be_downloaded(
    client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    """Regression: './~/x' was stored as '~/x', which download then refused for the whole run."""
    for path in ("./~/x", "./C:/x"):
        with pytest.raises(UnsafePath):
            client.log_bytes(run_id, b"x", path)
    client.log_bytes(run_id, b"ok", "./a/./b")
    assert (client.download_artifacts(run_id, "", tmp_path / "dst") / "a/b").read_bytes() == b"ok"


# -- symlinks -----------------------------------------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"secret")
    return folder


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "logme"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.txt").write_bytes(b"real")
    (folder / "sub" / "inner.txt").write_bytes(b"inner")
    return folder


@pytest.mark.parametrize(
    "make_link",
    [
        pytest.param(lambda f, o: (f / "leak.txt").symlink_to(o / "secret.txt"), id="file"),
        pytest.param(
            lambda f, o: (f / "sub" / "leak").symlink_to(o, target_is_directory=True), id="dir"
        ),
        pytest.param(
            lambda f, o: (f / "sub" / "rel").symlink_to("../../outside/secret.txt"),
            id="relative-file",
        ),
        pytest.param(lambda f, o: (f / "dangling").symlink_to(o / "nothing.txt"), id="dangling"),
        pytest.param(lambda f, o: (f / "root").symlink_to("/", target_is_directory=True), id="/"),
    ],
)
def test_log_artifacts_refuses_symlinks_leading_out(
    make_link, client: triptych.Client, run_id: str, tmp_path: Path, outside: Path
) -> None:
    folder = _folder(tmp_path)
    make_link(folder, outside)
    with pytest.raises(UnsafePath, match="outside"):
        client.log_artifacts(run_id, folder)
    assert client.list_artifacts(run_id) == []
    assert _blobs(client) == []


def test_log_artifacts_follows_symlinks_that_stay_inside(
    client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    (folder / "alias.txt").symlink_to(folder / "real.txt")
    (folder / "sub" / "relative.txt").symlink_to("../real.txt")
    (folder / "linked").symlink_to(folder / "sub", target_is_directory=True)
    (folder / "sub" / "loop").symlink_to(folder, target_is_directory=True)  # adds no files
    entries = {e.path: e for e in client.log_artifacts(run_id, folder, artifact_path="in")}
    assert sorted(entries) == [
        "in/alias.txt",
        "in/linked/inner.txt",
        "in/linked/relative.txt",
        "in/real.txt",
        "in/sub/inner.txt",
        "in/sub/relative.txt",
    ]
    assert entries["in/alias.txt"].digest == entries["in/real.txt"].digest
    assert client.read_artifact(run_id, "in/linked/inner.txt") == b"inner"
    assert len(_blobs(client)) == 2  # real + inner, each stored once


def test_log_artifacts_checks_nested_links_against_the_logged_folder(
    client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    """A link met through another link is judged against the folder being logged (it was
    judged against the first link's target, refusing trees that never leave the folder)."""
    folder = tmp_path / "logme"
    for name in ("a", "b", "other"):
        (folder / name).mkdir(parents=True)
        (folder / name / f"{name}.txt").write_bytes(name.encode())
    (folder / "a" / "to_b").symlink_to(folder / "b", target_is_directory=True)
    (folder / "b" / "to_a").symlink_to(folder / "a", target_is_directory=True)  # a cycle
    (folder / "b" / "up").symlink_to("../other", target_is_directory=True)
    entries = client.log_artifacts(run_id, folder)
    assert sorted(e.path for e in entries) == [
        "a/a.txt",
        "a/to_b/b.txt",
        "a/to_b/up/other.txt",
        "b/b.txt",
        "b/to_a/a.txt",
        "b/up/other.txt",
        "other/other.txt",
    ]
    assert len(_blobs(client)) == 3


def test_download_refuses_a_destination_with_symlinks_leading_out(
    client: triptych.Client, run_id: str, tmp_path: Path, outside: Path
) -> None:
    client.log_bytes(run_id, b"payload", "sub/f.txt")
    client.log_bytes(run_id, b"payload", "g.txt")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside, target_is_directory=True)
    (dst / "g.txt").symlink_to(outside / "planted.txt")  # dangling: would create it
    before = _tree(outside)
    for path in ("", "sub", "sub/f.txt", "g.txt"):
        with pytest.raises(UnsafePath, match="resolves outside"):
            client.download_artifacts(run_id, path, dst)
    assert _tree(outside) == before
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert not (outside / "planted.txt").exists()


def test_download_through_symlinks_that_stay_inside(
    client: triptych.Client, run_id: str, tmp_path: Path
) -> None:
    client.log_bytes(run_id, b"payload", "sub/f.txt")
    dst = tmp_path / "dst"
    (dst / "real").mkdir(parents=True)
    (dst / "sub").symlink_to(dst / "real", target_is_directory=True)
    client.download_artifacts(run_id, "", dst)
    assert (dst / "real" / "f.txt").read_bytes() == b"payload"
