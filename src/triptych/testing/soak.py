"""The soak: many concurrent clients against a real team server, then a count of what they wrote.

A ``triptych server`` process (one worker, over SQLite or PostgreSQL) and a ``triptych serve``
process for the diabetes Ridge (its store and artifacts are the team server, so its prediction
log goes through it too). ``clients`` threads, each with its own ``HttpStore`` and
``HttpArtifactStore`` (every fourth through the fluent API instead), repeat a round until the
time is up: every tenth round all of them create the same new experiment at once, then create
a run, ``log_batch`` of 100 metric points with params and tags, upload two small artifacts (one
with the same bytes from every client) and record them, every few rounds register a version of
one of three shared model names and move its ``newest`` alias, every few rounds a prediction,
a batch of metrics and tags on the one run every client writes to (each client in its own
order of keys), then finish the run. Each client keeps a ledger of what the server
acknowledged and of every error it saw. Afterwards the store is read directly (``SqlStore``,
not the server) and every acknowledged row is looked for: rows lost = expected - found; the
versions of each model must be 1..n with neither gaps nor duplicates, and every client must
have been given the same id for an experiment's name.

Used by ``benchmarks/soak.py`` (60 s) and ``tests/test_gauntlet_soak.py`` (a few seconds).
The server is started through :func:`serve` here, which is ``triptych server``'s own entry
(``triptych.server.process.serve``) plus one line at exit: how many transient database
errors it retried (``triptych.store.sql.engine.retries``), which no endpoint exposes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triptych.testing.process import ServerProcess, clean_env

MODELS = ("soak-a", "soak-b", "soak-c")  # registered concurrently by every client
EXPERIMENT = "soak"
SERVED = "diabetes"
METRIC_POINTS = 100
SHARED_KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"]  # on the run every client writes to
FLUENT_EVERY = 4  # every fourth client writes through the fluent API
EXPERIMENT_EVERY = 10  # rounds between new experiments (which all clients create at once)


@dataclass
class Ledger:
    """What one client was told it wrote, and what went wrong."""

    runs: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> {path: digest}
    experiments: dict[str, str] = field(default_factory=dict)  # name -> the id it was given
    finished: set[str] = field(default_factory=set)
    versions: list[tuple[str, int, str]] = field(default_factory=list)  # name, version, run id
    aliases: int = 0
    shared_steps: list[int] = field(default_factory=list)  # of every key on the shared run
    predictions: list[str] = field(default_factory=list)  # request ids
    latencies: list[float] = field(default_factory=list)  # seconds per request
    errors: list[str] = field(default_factory=list)


@dataclass
class Count:
    """One kind of row: how many the clients were acknowledged, how many the store holds."""

    expected: int = 0
    found: int = 0

    @property
    def lost(self) -> int:
        return self.expected - self.found


@dataclass
class Result:
    backend: str
    seconds: float
    clients: int
    requests: int
    errors: list[str]
    retries: int
    counts: dict[str, Count]
    problems: list[str]  # version gaps or duplicates, an experiment name given two ids
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def expected(self) -> int:
        return sum(c.expected for c in self.counts.values())

    @property
    def found(self) -> int:
        return sum(c.found for c in self.counts.values())

    @property
    def lost(self) -> int:
        return self.expected - self.found

    def percentile(self, q: float) -> float:
        """Latency in ms at quantile ``q`` (0..1) of every request."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# -- the servers ------------------------------------------------------------------------------
def _env(home: Path, **extra: str) -> dict[str, str]:
    return clean_env(home, DO_NOT_TRACK="true", **extra)


class Process(ServerProcess):
    def __init__(self, home: Path, args: list[str], ready: str, **env: str) -> None:
        super().__init__(args, cwd=home, env=_env(home, **env), ready=ready)


def serve(argv: list[str]) -> None:
    """``triptych server`` (one worker) that writes its count of retried transient database
    errors to ``--retries-file`` when it stops."""
    from triptych.server.process import serve as run
    from triptych.server.settings import ServerSettings
    from triptych.store.sql import engine

    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--retries-file", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        run(ServerSettings(store=args.store, artifacts=args.artifacts, port=args.port))
    finally:
        Path(args.retries_file).write_text(str(engine.retries()))


class TeamServer(Process):
    def __init__(self, home: Path, store: str) -> None:
        self.retries_file = home / "retries.txt"
        args = ["-m", "triptych.testing.soak", "--store", store, "--artifacts",
                str(home / "artifacts"), "--retries-file", str(self.retries_file)]  # fmt: skip
        super().__init__(home, args, "/health")

    def retries(self) -> int:
        return int(self.retries_file.read_text()) if self.retries_file.exists() else -1


def train(url: str) -> list[dict[str, float]]:
    """Register a Ridge on the diabetes data as ``diabetes@champion`` through the server at
    ``url``; returns a few held-out rows to ask predictions for."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import triptych
    from triptych.models import registry
    from triptych.testing import reset_process_state
    from triptych.tracking.client import Client

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    c = Client(url, url)
    triptych.set_tracking_uri(url, url)
    try:
        with triptych.start_run(experiment="training"):
            logged = triptych.log_model(
                Ridge(alpha=1.0).fit(X.iloc[:400], y.iloc[:400]), "model", input_example=X.head(5)
            )
        version = registry.register(logged.uri, SERVED, client=c)
        registry.set_alias(SERVED, "champion", version.version, client=c)
    finally:
        reset_process_state()
    rows = X.iloc[400:].to_numpy()
    return [dict(zip(X.columns, map(float, row), strict=True)) for row in rows]


# -- the clients ------------------------------------------------------------------------------
class SoakClient:
    """One client: its own connections to the servers, its own ledger."""

    def __init__(
        self, number: int, url: str, model_url: str, rows: list[dict[str, float]],
        experiment_id: str, shared_run: str, register_every: int, predict_every: int,
    ) -> None:  # fmt: skip
        import httpx

        from triptych.artifacts.http import HttpArtifactStore
        from triptych.store.http.client import HttpStore

        self.number = number
        # its own connections (open_store shares one store per URL); methods added at import
        self.store = HttpStore(url)  # type: ignore[abstract]
        self.artifacts = HttpArtifactStore(url)
        self.http = httpx.Client(timeout=60)
        self.model_url = model_url
        self.rows = rows
        self.experiment_id = experiment_id
        self.shared_run = shared_run
        self.register_every = register_every
        self.predict_every = predict_every
        self.fluent = number % FLUENT_EVERY == FLUENT_EVERY - 1
        self.ledger = Ledger()

    def timed(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn``; its latency goes into the ledger, and so does any error (re-raised)."""
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            self.ledger.errors.append(f"client {self.number} {what}: {type(e).__name__}: {e}")
            raise
        finally:
            self.ledger.latencies.append(time.perf_counter() - start)

    def run(self, until: float) -> Ledger:
        i = 0
        while time.monotonic() < until:
            with contextlib.suppress(Exception):  # already in the ledger: on to the next round
                self.round(i)
            i += 1
        self.store.close()
        self.artifacts.close()
        self.http.close()
        return self.ledger

    def round(self, i: int) -> None:
        if self.fluent:
            self.fluent_round(i)
            return
        from triptych.store.entities import ArtifactEntry, Metric, RunSpec, RunStatus

        name = f"client-{self.number}-{i}"
        if i % EXPERIMENT_EVERY == 0:  # every client races to create the same new experiment
            named = f"{EXPERIMENT}-{i // EXPERIMENT_EVERY}"
            made = self.timed(
                "get_or_create_experiment", self.store.get_or_create_experiment, named
            )
            self.experiment_id = self.ledger.experiments[named] = made.experiment_id
        spec = RunSpec(self.experiment_id, name=name, tags={"client": str(self.number)})
        run_id = self.timed("create_run", self.store.create_run, spec).run_id
        metrics = [Metric("loss", 1.0 / (s + 1), s, 0) for s in range(METRIC_POINTS)]
        self.timed(
            "log_batch", self.store.log_batch, run_id, metrics, self.params(i), {"stage": "soak"}
        )
        entries = []
        for path, data in self.files(name, i):
            blob = self.timed("put_bytes", self.artifacts.put_bytes, data.encode())
            entries.append(ArtifactEntry(path, blob.digest, blob.size))
        self.timed("record_artifacts", self.store.record_artifacts, run_id, entries)
        self.ledger.runs[run_id] = {e.path: str(e.digest) for e in entries}
        self.register_and_predict(run_id, i)
        self.log_shared(i)
        self.timed("finish_run", self.store.finish_run, run_id, RunStatus.FINISHED)
        self.ledger.finished.add(run_id)

    def fluent_round(self, i: int) -> None:
        """The same round as a training script writes it: ``triptych.start_run``, per-call
        ``log_metric`` on the background writer, ``log_text``, ``end`` (which flushes)."""
        import triptych

        name = f"client-{self.number}-{i}"
        named = f"{EXPERIMENT}-{i // EXPERIMENT_EVERY}"
        tags = {"client": str(self.number)}
        run = self.timed("start_run", triptych.start_run, named, name, tags=tags)
        try:
            self.ledger.experiments[named] = run.info.experiment_id
            run.log_params(self.params(i))
            for s in range(METRIC_POINTS):
                run.log_metric("loss", 1.0 / (s + 1), step=s)
            run.set_tag("stage", "soak")
            files = {}
            for path, data in self.files(name, i):
                files[path] = str(self.timed("log_text", run.log_text, data, path).digest)
            self.ledger.runs[run.run_id] = files
            self.register_and_predict(run.run_id, i)
            self.log_shared(i)
        except Exception:
            with contextlib.suppress(Exception):
                run.end("FAILED")
            raise
        self.timed("end_run", run.end)
        self.ledger.finished.add(run.run_id)

    def log_shared(self, i: int) -> None:
        """Metrics and tags on the one run every client writes to (a sweep's parent, say),
        each client in its own order of keys: the order in which transactions lock rows."""
        from triptych.store.entities import Metric

        keys = (
            SHARED_KEYS[self.number % len(SHARED_KEYS) :]
            + SHARED_KEYS[: self.number % len(SHARED_KEYS)]
        )
        step = self.number * 1_000_000 + i
        metrics = [Metric(k, float(i), step, 0) for k in keys]
        tags = {k: f"client-{self.number}" for k in keys}
        self.timed("log_batch shared", self.store.log_batch, self.shared_run, metrics, None, tags)
        self.ledger.shared_steps.append(step)

    def params(self, i: int) -> dict[str, str]:
        return {"alpha": str(i % 7), "client": str(self.number), "round": str(i)}

    def files(self, name: str, i: int) -> list[tuple[str, str]]:
        """Two small artifacts: one of this round's own, one with the same bytes from every
        client (so that uploads of one digest race)."""
        return [
            ("outputs/result.txt", f"{name} {time.time_ns()}\n" * 8),
            ("inputs/shared.txt", f"shared by every client {i // 5}\n" * 64),
        ]

    def register_and_predict(self, run_id: str, i: int) -> None:
        if i % self.register_every == self.number % self.register_every:
            model = MODELS[(self.number + i) % len(MODELS)]
            mv = self.timed(
                "create_model_version", self.store.create_model_version, model,
                f"runs:/{run_id}/outputs", run_id=run_id, user=f"client-{self.number}",
            )  # fmt: skip
            self.ledger.versions.append((model, mv.version, run_id))
            self.timed("set_model_alias", self.store.set_model_alias, model, "newest", mv.version)
            self.ledger.aliases += 1
        if i % self.predict_every == self.number % self.predict_every:
            self.predict(i)

    def predict(self, i: int) -> None:
        body = {"records": [self.rows[i % len(self.rows)], self.rows[(i + 1) % len(self.rows)]]}
        r = self.timed("predict", self.http.post, f"{self.model_url}/predict", json=body)
        if r.status_code != 200 or len(r.json().get("predictions", [])) != 2:
            self.ledger.errors.append(f"client {self.number} predict: {r.status_code} {r.text}")
            return
        self.ledger.predictions.append(r.headers["x-request-id"])


# -- the count --------------------------------------------------------------------------------
def count(
    store_url: str, artifacts_root: str, ledgers: list[Ledger], shared_run: str
) -> tuple[dict[str, Count], list[str]]:
    """Look for every acknowledged row in the store itself; the counts per kind of row and
    what is wrong with the version numbers."""
    from triptych.artifacts.fs import FsspecArtifactStore
    from triptych.serving import predlog
    from triptych.store.entities import RunStatus
    from triptych.store.sql.store import SqlStore
    from triptych.tracking.client import Client

    counts = {k: Count() for k in ("runs", "metrics", "params", "tags", "artifacts",
                                   "model versions", "alias events", "predictions")}  # fmt: skip
    store = SqlStore(store_url)
    blobs = FsspecArtifactStore(artifacts_root)
    problems: list[str] = []
    try:
        for ledger in ledgers:
            for name, experiment_id in ledger.experiments.items():
                found = store.get_experiment_by_name(name)
                if found is None or found.experiment_id != experiment_id:
                    problems.append(f"experiment {name!r} was given as {experiment_id}, is {found}")
            for run_id, files in ledger.runs.items():
                counts["runs"].expected += 1
                counts["metrics"].expected += METRIC_POINTS
                counts["params"].expected += 3
                counts["tags"].expected += 2
                counts["artifacts"].expected += len(files)
                try:
                    run = store.get_run(run_id)
                except Exception:
                    continue
                finished = run_id not in ledger.finished or run.status == RunStatus.FINISHED
                counts["runs"].found += int(finished)
                history = store.get_metric_history(run_id, "loss")
                counts["metrics"].found += min(METRIC_POINTS, len({m.step for m in history}))
                counts["params"].found += sum(k in run.params for k in ("alpha", "client", "round"))
                counts["tags"].found += int("client" in run.tags)
                counts["tags"].found += int(run.tags.get("stage") == "soak")
                entries = {e.path: e.digest for e in store.walk_artifacts(run_id)}
                counts["artifacts"].found += sum(
                    entries.get(path) == digest and blobs.exists(digest)
                    for path, digest in files.items()
                )
        steps = [step for ledger in ledgers for step in ledger.shared_steps]
        for key in SHARED_KEYS:
            logged = {m.step for m in store.get_metric_history(shared_run, key)}
            counts["metrics"].expected += len(steps)
            counts["metrics"].found += sum(step in logged for step in steps)
        given = [v for ledger in ledgers for v in ledger.versions]
        counts["model versions"].expected = len(given)
        counts["alias events"].expected = sum(ledger.aliases for ledger in ledgers)
        seen: dict[tuple[str, int], str] = {}
        for name, version, run_id in given:
            if (name, version) in seen:
                problems.append(f"{name} v{version} was given to two registrations")
            seen[(name, version)] = run_id
        for name in MODELS:
            if not any(n == name for n, _, _ in given):
                continue
            stored = store.list_model_versions(name)
            numbers = [mv.version for mv in stored]
            if sorted(numbers) != list(range(1, len(numbers) + 1)):
                problems.append(f"{name}: versions {sorted(numbers)} are not 1..{len(numbers)}")
            by_number = {mv.version: mv.run_id for mv in stored}
            counts["model versions"].found += sum(
                by_number.get(v) == r for (n, v), r in seen.items() if n == name
            )
            events = store.model_history(name)
            counts["alias events"].found += sum(e.action == "alias" for e in events)
        expected_ids = {rid for ledger in ledgers for rid in ledger.predictions}
        counts["predictions"].expected = len(expected_ids)
        if expected_ids:
            frame = predlog.read(client=Client(store_url, artifacts_root))
            counts["predictions"].found = len(expected_ids & set(frame["request_id"]))
    finally:
        store.close()
    return counts, problems


# -- the whole soak ---------------------------------------------------------------------------
def soak(
    backend: str, store_url: str, home: Path, *, seconds: float, clients: int = 16,
    register_every: int = 3, predict_every: int = 2,
) -> Result:  # fmt: skip
    """Run the soak against a fresh store at ``store_url`` (servers and files under ``home``)."""
    import triptych
    from triptych.store import open_store
    from triptych.store.entities import RunSpec
    from triptych.testing import reset_process_state

    home.mkdir(parents=True, exist_ok=True)
    server = TeamServer(home, store_url)
    model_server: Process | None = None
    try:
        rows = train(server.url)
        triptych.set_tracking_uri(server.url, server.url)  # for the fluent clients
        model_server = Process(
            home, ["-m", "triptych", "serve", f"models:/{SERVED}@champion", "--poll-interval", "0"],
            "/ready", TRIPTYCH_TRACKING_URI=server.url, TRIPTYCH_ARTIFACT_URI=server.url,
        )  # fmt: skip
        experiment_id = open_store(server.url).get_or_create_experiment(EXPERIMENT).experiment_id
        shared = open_store(server.url).create_run(RunSpec(experiment_id, name="shared")).run_id
        workers = [
            SoakClient(n, server.url, model_server.url, rows, experiment_id, shared,
                       register_every, predict_every)
            for n in range(clients)
        ]  # fmt: skip
        start = time.monotonic()
        until = start + seconds
        threads = [threading.Thread(target=w.run, args=(until,), name=f"soak-{w.number}")
                   for w in workers]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
    finally:
        reset_process_state()
        if model_server is not None:
            model_server.stop()  # writes the rest of its prediction log through the server
        server.stop()
    ledgers = [w.ledger for w in workers]
    counts, problems = count(store_url, str(home / "artifacts"), ledgers, shared)
    return Result(
        backend=backend,
        seconds=elapsed,
        clients=clients,
        requests=sum(len(ledger.latencies) for ledger in ledgers),
        errors=[e for ledger in ledgers for e in ledger.errors],
        retries=server.retries(),
        counts=counts,
        problems=problems,
        latencies=[x for ledger in ledgers for x in ledger.latencies],
    )


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server at ``server_url``, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from triptych.store.sql.engine import normalise_url

    url = make_url(normalise_url(server_url))
    name = f"triptych_soak_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    serve(sys.argv[1:])
