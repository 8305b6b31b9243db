"""Path gauntlet: every user-given path or address is canonicalised once and stays inside its
root, or is refused with a clear InvalidInput / UnsafePath.

The forms that broke the best-known tracking server again and again (``..``, ``%2e%2e``,
double encoding, backslashes, ``;`` path parameters, ``#`` fragments, ``//host``, empty
schemes, NUL, overlong UTF-8, absolute paths, symlinks) are run against every Python API that
takes a path and against every HTTP route of a real server on loopback that carries one. A
secret file sits just outside each root: no call may read it, list it or write beside it.
Hypothesis then tries generated paths against the same calls. The number of paths tried is
printed at the end of the run (``gauntlet`` section of the summary).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import triptych
import triptych.data as datasets
from triptych import deployments
from triptych.artifacts import paths
from triptych.artifacts.fs import FsspecArtifactStore
from triptych.cli.main import app as cli
from triptych.errors import InvalidInput, NotFound, TriptychError, UnsafePath
from triptych.models import registry
from triptych.monitoring import monitors, report
from triptych.scaffold import init as scaffold
from triptych.store.entities import ArtifactEntry, RunSpec
from triptych.store.http.client import HttpStore
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

SECRET = b"the secret outside every root"
PATHS = "paths tried"

# The known bypass forms: each is aimed at a file named ``secret.txt`` one folder up.
BYPASS: list[str] = [
    "../secret.txt",
    "a/../../secret.txt",
    "..",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "..%2fsecret.txt",
    "%252e%252e/secret.txt",  # double encoding
    "%25252e%25252e/secret.txt",  # triple
    "..\\secret.txt",
    "a\\..\\..\\secret.txt",
    "\\\\host\\share\\secret.txt",
    "..;/secret.txt",  # a ';' path parameter (Tomcat and friends drop it)
    "a;x=1/../../secret.txt",
    "#/../secret.txt",  # a fragment that a URL parser would cut off
    "a#/../../secret.txt",
    "//host/secret.txt",
    "///secret.txt",
    "/etc/passwd",
    "/secret.txt",
    "file:///etc/passwd",
    ":/../secret.txt",  # an empty scheme
    "://../secret.txt",
    "a\x00/../../secret.txt",  # NUL
    "secret.txt\x00.png",
    "%00../secret.txt",
    "%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for '..'
    "\xc0\xae\xc0\xae/secret.txt",  # the same bytes read as latin-1
    "\uff0e\uff0e/secret.txt",  # fullwidth dots (NFKC would make them '..')
    "~/secret.txt",
    "C:/secret.txt",
    "C:\\secret.txt",
    "./../secret.txt",
    ".../secret.txt",
    "a/./../../secret.txt",
    "a/%2e%2e/%2e%2e/secret.txt",
]


def _id(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")[:40] or "<empty>"


IDS = [_id(p) for p in BYPASS]


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def count(gauntlet: dict[str, int]) -> Callable[[int], None]:
    def add(n: int = 1) -> None:
        gauntlet[PATHS] = gauntlet.get(PATHS, 0) + n

    return add


# -- a world with a run, a model, a deployment and a secret next to the root --------------------
class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root.parent / "secret.txt").write_bytes(SECRET)
        (root / "secret.txt").write_bytes(SECRET)  # for paths that climb from inside the cwd
        x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0)[::-1]})
        self.frame = x
        datasets.add("ref", x.assign(target=x.a * 2))
        with triptych.start_run(experiment="gauntlet") as run:
            triptych.log_input("datasets:/ref@1")
            triptych.log_model(_ridge(x), "model", input_example=x.head(2))
            triptych.log_text("hello", "notes/hello.txt")
        self.run_id = run.run_id
        registry.register(f"runs:/{run.run_id}/model", "m")
        registry.set_alias("m", "champion", 1)
        deployments.create("m", "models:/m@champion")
        monitors.create("m", window="10m")
        self.client = triptych.Client()
        self.input = root / "in.parquet"
        x.to_parquet(self.input)

    def untouched(self) -> None:
        """Nothing read or written next to the root."""
        assert sorted(os.listdir(self.root.parent)) == sorted(["secret.txt", self.root.name])
        assert (self.root.parent / "secret.txt").read_bytes() == SECRET


def _ridge(x: pd.DataFrame) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge().fit(x, x.a * 2)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.chdir(root)
    return World(root)


def _refused(call: Callable[[], object], *kinds: type[BaseException]) -> TriptychError:
    """``call`` raises one of ``kinds`` (InvalidInput by default): a TriptychError with a
    message, never a raw OSError/ValueError."""
    with pytest.raises(kinds or (InvalidInput,)) as info:
        call()
    error = info.value
    assert isinstance(error, TriptychError) and error.message
    return error


# -- the table: every Python API that takes a path ----------------------------------------------
def _canonical(form: str) -> str | None:
    try:
        return paths.normalise(form)
    except UnsafePath:
        return None


# Forms that are harmless literal keys once canonicalised (``;`` and ``#`` are characters of a
# name, not URL syntax; fullwidth dots are not dots); every other form must be refused.
LITERAL = [f for f in BYPASS if _canonical(f) is not None]
assert len(LITERAL) < len(BYPASS) // 4, LITERAL  # the table is mostly attacks


@pytest.mark.parametrize("form", BYPASS, ids=IDS)
def test_python_apis_refuse_every_bypass_form(
    form: str, world: World, count: Callable[[int], None]
) -> None:
    c, run_id = world.client, world.run_id
    store = c.store
    source = world.root / "f.txt"
    source.write_bytes(b"payload")
    digest = c.artifacts.put_bytes(b"x").digest
    before = _tree(world.root)
    clean = _canonical(form)
    artifact_calls: dict[str, Callable[[], object]] = {
        # artifact paths: the client and, beneath it, the store the server hands raw input to
        "log_bytes": lambda: c.log_bytes(run_id, b"x", form),
        "log_artifact": lambda: c.log_artifact(run_id, source, artifact_path=form),
        "list_artifacts": lambda: c.list_artifacts(run_id, form),
        "read_artifact": lambda: c.read_artifact(run_id, form),
        "download_artifacts": lambda: c.download_artifacts(run_id, form, world.root / "dl"),
        "store.get_artifact": lambda: store.get_artifact(run_id, form),
        "store.walk_artifacts": lambda: store.walk_artifacts(run_id, form),
        "load_model runs:/": lambda: triptych.load_model(f"runs:/{run_id}/{form}"),
        "register": lambda: registry.register(f"runs:/{run_id}/{form}", "m"),
    }
    if clean is None:
        for name, call in artifact_calls.items():
            error = _refused(call, UnsafePath)
            assert "artifact path" in error.message, name
    else:
        # accepted as a literal key: stored under its canonical form, read back under either
        # spelling, downloaded strictly inside the folder asked for
        assert c.log_bytes(run_id, b"x", form).path == clean
        assert c.read_artifact(run_id, form) == b"x"
        out = c.download_artifacts(run_id, form, world.root / "dl")
        assert out.resolve().is_relative_to((world.root / "dl").resolve())
        assert out.read_bytes() == b"x"
        _refused(lambda: triptych.load_model(f"runs:/{run_id}/{form}"), NotFound)
        before |= _tree(world.root)
    if clean != form:  # the store refuses what the client would have rewritten
        _refused(lambda: store.record_artifacts(run_id, [ArtifactEntry(form, digest, 1)]))
    other_calls: dict[str, Callable[[], object]] = {
        # model and registry addresses: names are strict, so every form is invalid there
        "load_model models:/": lambda: triptych.load_model(f"models:/{form}/1"),
        "load_model models:/@": lambda: triptych.load_model(f"models:/m@{form}"),
        "register name": lambda: registry.register(f"runs:/{run_id}/model", form),
        "deploy": lambda: deployments.create("d", f"models:/{form}@champion"),
        # dataset addresses
        "data.load": lambda: datasets.load(f"datasets:/{form}@1"),
        "data.add name": lambda: datasets.add(form, world.frame),
    }
    for call in other_calls.values():
        _refused(call, InvalidInput)
    # a runs:/ model source never reaches a file: a run id is a key, looked up
    _refused(lambda: deployments.create("d", f"runs:/{form}/model"), InvalidInput, NotFound)
    # a dataset source is a local file read literally: no decoding, so no escape
    error = _refused(lambda: datasets.add("src", form), InvalidInput, NotFound)
    assert SECRET.decode() not in str(error)
    count(len(artifact_calls) + len(other_calls) + 3)
    assert _tree(world.root) == before
    assert [v.version for v in store.list_model_versions("m")] == [1]
    assert [d.name for d in store.list_deployments()] == ["m"]
    world.untouched()


LOCAL_FORMS = [f for f in BYPASS if not f.startswith(("/", "~"))]


@pytest.mark.parametrize("form", LOCAL_FORMS, ids=[_id(f) for f in LOCAL_FORMS])
def test_output_paths_land_where_they_say_or_are_refused(
    form: str, world: World, count: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Report, ``predict --output`` and ``init`` targets are the user's own paths: taken
    literally (never decoded), so the output appears exactly where the canonical path points,
    or the call is refused with a clear error; nothing is written next to the root. (Absolute
    and ``~`` paths are honoured as given: they are the user's own choice of place.)"""
    data = report.gather("m")
    inside = world.root / "deep" / "er"
    inside.mkdir(parents=True)
    monkeypatch.setenv("TRIPTYCH_HOME", str(world.root / ".triptych"))  # the CLI's store
    monkeypatch.chdir(inside)  # ``..`` forms climb to the root's own folders, never past it
    before = _tree(world.root)

    def lands(call: Callable[[], object], target: str) -> None:
        try:
            call()
        except TriptychError as e:  # InvalidInput, or AlreadyExists for a folder in use
            assert e.message and "Traceback" not in str(e)
            assert _tree(world.root) == before, "a refused call left a file"
            return
        # written: at the one canonical place the form names, and nowhere else
        expected = Path(os.path.abspath(target))
        assert expected.exists(), f"{target!r} was accepted but {expected} is missing"
        assert expected.is_relative_to(world.root)
        rel = expected.relative_to(world.root)
        mine = {str(rel), *(str(p) for p in rel.parents)}
        added = {p for p in _tree(world.root) - before if not p.startswith(f"{rel}/")}
        assert added <= mine, f"{target!r} also wrote {sorted(added - mine)}"
        if expected.is_dir():
            shutil.rmtree(expected)
        else:
            expected.unlink()

    def predict() -> None:
        result = CliRunner().invoke(
            cli,
            [
                *("predict", f"runs:/{world.run_id}/model", "--input", str(world.input)),
                *("--output", f"{form}.parquet", "--json"),
            ],
        )
        if isinstance(result.exception, TriptychError):
            raise result.exception  # what the entry point prints as one line
        if result.exit_code == 2 and "Invalid value for '--output'" in result.output:
            raise InvalidInput(result.output)  # refused by the option's own type (NUL)
        assert result.exit_code == 0, (result.exit_code, result.output, result.exception)

    lands(lambda: report.write("m", f"{form}.html", data=data), f"{form}.html")
    lands(predict, f"{form}.parquet")
    lands(lambda: scaffold.init(form, git=False), form)
    count(3)
    world.untouched()


def test_symlinks_never_lead_out(
    world: World, count: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder being logged, a folder being downloaded into, and an output file that is a
    symlink to the secret: nothing outside the root is read or written through them."""
    c, run_id, secret = world.client, world.run_id, world.root.parent / "secret.txt"
    logged = world.root / "logged"
    logged.mkdir()
    (logged / "ok.txt").write_text("ok")
    (logged / "leak.txt").symlink_to(secret)
    with pytest.raises(UnsafePath, match="outside"):
        c.log_artifacts(run_id, logged, "x")
    assert [e.path for e in c.list_artifacts(run_id)] == ["model", "notes"]  # nothing logged
    dst = world.root / "dst"
    dst.mkdir()
    (dst / "notes").symlink_to(world.root.parent, target_is_directory=True)
    with pytest.raises(UnsafePath, match="outside"):
        c.download_artifacts(run_id, "notes", dst)
    assert not (world.root.parent / "hello.txt").exists()
    # outputs replace a symlink, never write through it
    monkeypatch.setenv("TRIPTYCH_HOME", str(world.root / ".triptych"))
    data = report.gather("m")
    (world.root / "r.html").symlink_to(secret)
    report.write("m", world.root / "r.html", data=data)
    (world.root / "o.parquet").symlink_to(secret)
    result = CliRunner().invoke(
        cli,
        ["predict", f"runs:/{run_id}/model", "-i", str(world.input), "-o", "o.parquet", "--json"],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    for out in ("r.html", "o.parquet"):
        assert not (world.root / out).is_symlink() and (world.root / out).stat().st_size > 0
    count(4)
    world.untouched()


# -- the table over HTTP: every route that carries a path ---------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, Path]]:
    base = tmp_path_factory.mktemp("served")
    root = base / "root"
    root.mkdir()
    (base / "secret.txt").write_bytes(SECRET)
    store = SqlStore(f"sqlite:///{root / 'store.db'}")
    artifacts = FsspecArtifactStore(str(root / "artifacts"))
    run = store.create_run(RunSpec(store.create_experiment("e")))
    blob = artifacts.put_bytes(b"hello")
    store.record_artifacts(run.run_id, [ArtifactEntry("notes/hello.txt", blob.digest, 5)])
    with LiveServer(store, artifacts) as server:
        ML_RUN[server.url] = store.create_run(RunSpec(store.create_experiment("ml"))).run_id
        yield server, run.run_id, base
    store.close()


ML_RUN: dict[str, str] = {}  # the run MLflow uploads are aimed at, per server


def _climbs(form: str) -> bool:
    """Refused for more than leading slashes: ``..``, encodings, backslashes, NUL, ``~``."""
    return _canonical(form.lstrip("/")) is None


_PARAM = re.compile(r"{[^}]+}")


def segment_routes(app: Any) -> list[str]:
    """Every GET route of the app with a path parameter, each parameter as ``{}``: found by
    walking the app, so a route added later is fuzzed too."""
    found = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if "{" in path and "GET" in (getattr(route, "methods", None) or ()):
            found.add(_PARAM.sub("{}", path))
    return sorted(found)


# Routes that take a path in the query string or after a fixed prefix ({run}: a real run).
MLFLOW = "/api/2.0/mlflow-artifacts/artifacts"
QUERY_ROUTES = [
    "/api/v1/runs/{run}/artifacts?path={}",
    "/api/v1/runs/{run}/artifacts/walk?path={}",
    "/api/v1/runs/{run}/artifacts/entry?path={}",
    "/ui/runs/{run}/preview?path={}",
    MLFLOW + "?path=0/{run}/artifacts/{}",
    MLFLOW + "/0/{run}/artifacts/{}",
]


def _raw(
    url: str, target: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    """A request with the target sent byte for byte (no client-side normalisation of ``..``
    or encodings); only bytes HTTP forbids on the wire are escaped."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    safe = re.sub(r"[\x00-\x20\x7f-\U0010ffff]", lambda m: quote(m.group(0)), target)
    try:
        conn.request(method, safe, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _raw_get(url: str, target: str) -> tuple[int, bytes]:
    return _raw(url, target)


def test_the_route_walk_finds_the_routes_that_take_paths(
    served: tuple[LiveServer, str, Path],
) -> None:
    routes = segment_routes(served[0].app)
    for expected in ("/api/v1/blobs/{}", "/api/v1/runs/{}", "/ui/static/{}", MLFLOW + "/{}"):
        assert expected in routes
    assert len(routes) >= 30


@pytest.mark.parametrize("form", BYPASS, ids=IDS)
def test_http_routes_refuse_every_bypass_form(
    form: str, served: tuple[LiveServer, str, Path], count: Callable[[int], None]
) -> None:
    server, run_id, base = served
    before = _tree(base)
    tried = 0
    for route in segment_routes(server.app) + QUERY_ROUTES:
        route = route.replace("{run}", run_id)
        quoted = route.replace("{}", quote(form, safe=""))
        for target in (quoted, route.replace("{}", form)):
            status, body = _raw(server.url, target)
            tried += 1
            assert status < 500, (target, status, body[:300])
            assert SECRET not in body and b"root:" not in body, target
            if status == 200 and route.startswith("/api/v1/") and "?path=" not in route:
                # only a lookup that finds nothing answers: blob in use? events of a name?
                assert body in (b"false", b"[]"), (target, body[:200])
            elif status == 200 and route.startswith("/api/v1/"):  # the run's own tree only
                found = json.loads(body)
                listed = {e["path"] for e in (found if isinstance(found, list) else [found])}
                assert listed <= {"notes", "notes/hello.txt"}, (target, listed)
            elif status == 200 and route.startswith(MLFLOW + "/"):
                assert _canonical(form) is not None and body == b"", (target, body[:200])
            # the quoted form reaches the server exactly as given: a climbing form is refused
            # (MLflow's routes fold repeated slashes, as MLflow does: still inside the run)
            if route.startswith(MLFLOW) and target == quoted and _climbs(form):
                assert status in (400, 404), (target, status, body[:300])
            if "/api/v1/" in route and "?path=" in route and target == quoted != route:
                assert status == 400 or _canonical(form) == form, (target, status, body[:300])
    # uploads: a blob under a name that is not a digest; an MLflow artifact under the form
    ml_run = ML_RUN[server.url]
    quoted_put = f"{MLFLOW}/0/{ml_run}/artifacts/{quote(form, safe='')}"
    for target in (
        f"/api/v1/blobs/{quote(form, safe='')}",
        quoted_put,
        f"{MLFLOW}/0/{ml_run}/artifacts/{form}",
    ):
        status, body = _raw(server.url, target, "PUT", b"planted")
        tried += 1
        assert status < 500 and SECRET not in body, (target, status, body[:300])
        if "/blobs/" in target or (target == quoted_put and _climbs(form)):
            assert status in (400, 404, 405), (target, status, body[:300])
    planted = [e.path for e in server.app.state.store.walk_artifacts(ml_run)]
    assert all(paths.normalise(p) == p for p in planted), planted  # canonical keys only
    with httpx.Client(base_url=server.url, timeout=30) as http_client:
        for verb in ("DELETE", "HEAD"):
            response = http_client.request(verb, f"/api/v1/blobs/{quote(form, safe='')}")
            tried += 1
            assert response.status_code in (400, 404, 405), (verb, response.status_code)
    # the store contract over HTTP: a raw client that skips the client-side normalisation
    remote = HttpStore(server.url)
    try:
        digest = "0" * 64
        if _canonical(form) != form:
            for call in (
                lambda: remote.record_artifacts(run_id, [ArtifactEntry(form, digest, 1)]),
                lambda: remote.get_artifact(run_id, form),
                lambda: remote.list_artifacts(run_id, form),
            ):
                _refused(call, UnsafePath)
                tried += 1
        else:  # a literal key: looked up in the run's tree
            remote.list_artifacts(run_id, form)
            tried += 1
        tree = [e.path for e in remote.walk_artifacts(run_id)]
        assert "notes/hello.txt" in tree
        assert all(paths.normalise(p) == p for p in tree)  # only canonical keys, ever
    finally:
        remote._http.close()
    count(tried)
    assert {p for p in _tree(base) if not p.startswith("root/")} == {
        p for p in before if not p.startswith("root/")
    }
    assert (base / "secret.txt").read_bytes() == SECRET


def test_a_blob_route_with_a_valid_digest_serves_only_that_blob(
    served: tuple[LiveServer, str, Path], count: Callable[[int], None]
) -> None:
    server, _, _ = served
    digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # "hello"
    assert _raw_get(server.url, f"/api/v1/blobs/{digest}") == (200, b"hello")
    for suffix in ("/../../secret.txt", "/..%2f..%2fsecret.txt", ";/../secret.txt", "%00"):
        status, body = _raw_get(server.url, f"/api/v1/blobs/{digest}{suffix}")
        assert status in (400, 404) and SECRET not in body, (suffix, status)
    count(5)


# -- properties: generated paths against the same calls -----------------------------------------
_PIECES = st.sampled_from(
    [
        *("a", "b", "é", ".", "..", "...", "/", "//", "\\", "~", "C:", ":", "%", "%2e", "%2f"),
        *("%25", "%252e", ";", "#", "?", " ", "\x00", "\xc0\xae", "\uff0e", "secret.txt"),
        *("file:", "runs:", "//host", "\u202e", "\ud800"),
    ]
)
_PATHS = st.one_of(st.lists(_PIECES, max_size=10).map("".join), st.text(max_size=40))
_SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def run_world(tmp_path: Path) -> tuple[triptych.Client, str, Path]:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    c = triptych.Client()
    run_id = c.create_run(c.create_experiment("fuzz"), capture=False).run_id
    return c, run_id, tmp_path


@_SETTINGS
@given(raw=_PATHS)
def test_generated_artifact_paths_stay_inside_the_run_and_the_folder(
    raw: str, run_world: tuple[triptych.Client, str, Path], count: Callable[[int], None]
) -> None:
    c, run_id, base = run_world
    count(1)
    try:
        entry = c.log_bytes(run_id, SECRET[:4], raw)
    except UnsafePath as e:
        assert e.message
        return
    canonical = paths.normalise(raw)
    assert entry.path == canonical
    assert c.store.get_artifact(run_id, canonical).path == canonical  # the store agrees
    dst = base / "dl"
    out = c.download_artifacts(run_id, canonical, dst)
    assert out.resolve().is_relative_to(dst.resolve())
    assert (base / "secret.txt").read_bytes() == SECRET


@_SETTINGS
@given(raw=_PATHS)
def test_generated_model_and_registry_sources_resolve_inside_the_run(
    raw: str, run_world: tuple[triptych.Client, str, Path], count: Callable[[int], None]
) -> None:
    c, run_id, _ = run_world
    count(3)
    for uri in (f"runs:/{run_id}/{raw}", f"models:/{raw}", f"datasets:/{raw}"):
        try:
            if uri.startswith("runs:/"):
                registry.register(uri, "m", client=c)
                raise AssertionError(f"registered {uri!r} from a run with no files")
            elif uri.startswith("models:/"):
                ref = registry.parse_ref(uri)
                assert "/" not in ref.name and ".." not in ref.name and "\\" not in ref.name
                assert "%" not in ref.name and "\x00" not in ref.name
            else:
                dref = datasets.parse_ref(uri)
                assert datasets.parse_ref(str(dref)) == dref  # canonical: parses to itself
                assert "/" not in dref.name and ".." not in dref.name and "%" not in dref.name
        except (InvalidInput, NotFound) as e:
            assert e.message


@_SETTINGS
@given(raw=_PATHS)
def test_generated_report_paths_are_taken_literally(
    raw: str, tmp_path: Path, count: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    count(1)
    folder = tmp_path / "reports"
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)
    try:
        target = report.check_path(raw)
    except InvalidInput as e:
        assert e.message
        return
    literal = Path(os.path.abspath(os.path.expanduser(raw)))
    assert target == literal.parent.resolve() / literal.name  # one canonical form, no decoding
    segments = raw.split("/")
    if not raw.startswith(("/", "~")) and ".." not in segments:
        assert target.is_relative_to(folder.resolve())
