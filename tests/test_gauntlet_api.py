"""API gauntlet: Schemathesis fuzzes every operation of the team server's OpenAPI document.

A real server on loopback over a fresh SQLite store (an experiment, a run with metrics and a
registered model version in it; half the valid requests name them, so reads find rows), with
valid and invalid requests: with auth off, with auth on and an admin token, and in smaller
passes over PostgreSQL and without a token (every non-public operation must answer 401).
Every answer must be no 5xx, of a documented status and content type, and match its schema;
the requests are counted in the gauntlet summary. A stateful pass (auth off, and on with the
admin token) follows the document's OpenAPI links: it creates experiments, runs and model
versions and feeds the ids they answer with to the calls that use them, under the same checks,
each scenario on a fresh store. The MLflow-compatible API and the UI pages are not in the
document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from triptych.artifacts.fs import FsspecArtifactStore
from triptych.server import accounts
from triptych.server.settings import ServerSettings
from triptych.store.entities import Metric, RunSpec
from triptych.store.sql.store import SqlStore
from triptych.testing.server import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Schemathesis rewrites a tuple's `prefixItems` inside `items` to the draft-4 array form and
# then refuses its own rewrite ("Invalid Schema Object ... items -> items"); the document is
# valid OpenAPI 3.1, so only the answer's schema check is skipped for these operations.
PREFIX_ITEMS = {"GET /api/v1/lineage/dataset-versions"}
FUZZ = settings(
    max_examples=8,  # per operation and mode: the file stays near a minute on two cores
    derandomize=True,  # the same requests on every run, so a failure reproduces
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

WALK = settings(
    max_examples=15,  # scenarios per family and server, each of up to 15 calls
    stateful_step_count=15,
    phases=[Phase.generate],  # no shrinking: a failing scenario is reported as it ran
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class Fuzzed:
    """A server under fuzzing: its schema, the headers every request carries, seeded rows."""

    server: LiveServer
    schema: Any
    headers: dict[str, str]
    seeded: dict[str, str]  # path parameter → a value naming a real row


def _seed(store: SqlStore) -> dict[str, str]:
    experiment = store.create_experiment("fuzzed")
    run = store.create_run(RunSpec(experiment_id=experiment, name="seed"))
    store.log_batch(
        run.run_id,
        [Metric("loss", 0.5, step, 0) for step in range(3)],
        params={"lr": "0.1"},
        tags={"team": "gauntlet"},
    )
    version = store.create_model_version("fuzzed-model", "runs:/x/model", run_id=run.run_id)
    return {
        "experiment_id": experiment,
        "run_id": run.run_id,
        "name": "fuzzed-model",
        "version": str(version.version),
    }


def _serve(tmp: Path, *, auth: bool, url: str | None = None) -> Iterator[Fuzzed]:
    url = url or f"sqlite:///{tmp / 'fuzz.db'}"
    store = SqlStore(url)
    seeded = _seed(store)
    headers: dict[str, str] = {}
    if auth:
        headers["authorization"] = f"Bearer {accounts.create_admin(store, 'root').secret}"
    artifacts = FsspecArtifactStore(str(tmp / "artifacts"))
    live = LiveServer(store, artifacts, settings=ServerSettings(store=url, auth=auth))
    live.app.state.upload_dir = tmp / "uploads"  # partial uploads stay in this test's folder
    with live:
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        yield Fuzzed(live, schema, headers, seeded)
    store.close()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    yield from _serve(tmp_path_factory.mktemp("open"), auth=False)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    yield from _serve(tmp_path_factory.mktemp("auth"), auth=True)


@pytest.fixture(scope="module")
def postgres_server_fuzzed(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    """Auth off over a fresh PostgreSQL database: its columns refuse what SQLite takes."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from triptych.store.sql.engine import normalise_url

    server = make_url(normalise_url(postgres_server))
    name = f"triptych_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        yield from _serve(tmp_path_factory.mktemp("postgres"), auth=False, url=url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fuzz(
    fuzzed: Fuzzed,
    gauntlet: dict[str, int],
    *,
    modes: tuple[GenerationMode, ...] = MODES,
    fuzz: settings = FUZZ,
    anonymous: bool = False,
) -> tuple[int, list[str]]:
    """Fuzz every operation of ``fuzzed`` in ``modes``: the operations covered and one line
    per failing operation and mode. ``anonymous``: no token, and every operation that needs
    one must answer 401."""
    doc = httpx.get(f"{fuzzed.server.url}/openapi.json", timeout=30).json()
    failures: list[str] = []
    operations = 0
    for result in fuzzed.schema.get_all_operations():
        operation = result.ok()
        operations += 1
        secured = doc["paths"][operation.path][operation.method.lower()].get("security") != []
        for mode in modes:
            try:
                _fuzz_operation(fuzzed, operation, mode, gauntlet, fuzz, anonymous and secured)
            except Unsatisfiable:  # nothing to make invalid: only text in the path
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as e:  # report every failing operation
                failures.append(f"{operation.label} ({mode.value}): {e}")
    return operations, failures


def _fuzz_operation(
    fuzzed: Fuzzed,
    operation: Any,
    mode: GenerationMode,
    gauntlet: dict[str, int],
    fuzz_settings: settings,
    refused: bool,
) -> None:
    checks = CHECKS
    if operation.label in PREFIX_ITEMS:
        checks = [c for c in CHECKS if c is not response_schema_conformance]

    @fuzz_settings
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def fuzz(case: Any, real: bool) -> None:
        if real and mode is GenerationMode.POSITIVE:  # name rows that exist
            for name in case.path_parameters or {}:
                if name in fuzzed.seeded:
                    case.path_parameters[name] = fuzzed.seeded[name]
        response = case.call(base_url=fuzzed.server.url, headers=fuzzed.headers)
        gauntlet["requests fuzzed"] = gauntlet.get("requests fuzzed", 0) + 1
        case.validate_response(response, checks=checks, headers=fuzzed.headers)
        if refused:
            assert response.status_code == 401, f"{case.method} {case.formatted_path}"
            if case.method != "HEAD":
                assert set(response.json()) == {"error", "message", "hint"}

    fuzz()


def test_fuzz_without_auth(open_server: Fuzzed, gauntlet: dict[str, int]) -> None:
    operations, failures = _fuzz(open_server, gauntlet)
    assert operations > 80
    assert not failures, "\n\n".join(failures)


def test_fuzz_over_postgresql(postgres_server_fuzzed: Fuzzed, gauntlet: dict[str, int]) -> None:
    # Valid requests only: ill-typed ones stop at the server's argument check on any backend,
    # while well-typed values (NUL in text, a big id) meet the database's own limits.
    operations, failures = _fuzz(postgres_server_fuzzed, gauntlet, modes=(GenerationMode.POSITIVE,))
    assert operations > 80
    assert not failures, "\n\n".join(failures)


def test_fuzz_without_a_token_is_refused(auth_server: Fuzzed, gauntlet: dict[str, int]) -> None:
    anonymous = Fuzzed(auth_server.server, auth_server.schema, {}, auth_server.seeded)
    few = settings(FUZZ, max_examples=3)
    operations, failures = _fuzz(
        anonymous, gauntlet, modes=(GenerationMode.POSITIVE,), fuzz=few, anonymous=True
    )
    assert operations > 80
    assert not failures, "\n\n".join(failures)


def test_fuzz_with_an_admin_token(auth_server: Fuzzed, gauntlet: dict[str, int]) -> None:
    operations, failures = _fuzz(auth_server, gauntlet)
    gauntlet["API operations fuzzed"] = operations
    assert operations > 80
    assert not failures, "\n\n".join(failures)


# The walks go family by family: over all links at once, the rules that need only an
# experiment or a model crowd out the ones that need a run.
FAMILIES = {
    "experiments": r"^/api/v1/experiments",
    "runs": r"^/api/v1/(experiments$|runs|lineage/model-versions)",
    "models": r"^/api/v1/models",
}


def _walk(fuzzed: Fuzzed, family: str, tmp: Path, gauntlet: dict[str, int]) -> dict[str, int]:
    """Run Schemathesis' state machine over the document's links against ``fuzzed``: every
    answer passes the same checks as the stateless passes. Each scenario starts on a fresh,
    empty store (so a replayed scenario meets the same state, as Hypothesis needs), with a
    fresh admin token when auth is on. Returns the steps taken, and how many of them used a
    value a link carried over from an earlier answer."""
    every = schemathesis.openapi.from_url(f"{fuzzed.server.url}/openapi.json")
    schema = every.include(path_regex=FAMILIES[family])
    stateful = schema.config.phases.stateful
    stateful.inference.algorithms = []  # only the links the document has
    # Valid calls only (the stateless passes send the invalid ones): a scenario that starts
    # with a refused request has no ids to carry on.
    stateful.generation.update(modes=[GenerationMode.POSITIVE])
    counts = {"steps": 0, "linked": 0, "scenarios": 0}
    served = fuzzed.server.app.state.store

    class Walk(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            counts["scenarios"] += 1
            self.store = SqlStore(f"sqlite:///{tmp / f'walk-{uuid.uuid4().hex}.db'}")
            self.headers: dict[str, str] = {}
            if fuzzed.headers:
                secret = accounts.create_admin(self.store, "root").secret
                self.headers["authorization"] = f"Bearer {secret}"
            fuzzed.server.use(self.store)

        def teardown(self) -> None:
            fuzzed.server.use(served)
            self.store.close()

        def step(self, input: Any) -> Any:
            counts["steps"] += 1
            counts["linked"] += input.transition is not None and bool(input.applied_parameters)
            return super().step(input)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzzed.server.url, "headers": self.headers}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            gauntlet["requests fuzzed"] = gauntlet.get("requests fuzzed", 0) + 1
            gauntlet["stateful steps"] = gauntlet.get("stateful steps", 0) + 1
            checks = CHECKS
            if case.operation.label in PREFIX_ITEMS:
                checks = [c for c in CHECKS if c is not response_schema_conformance]
            case.validate_response(response, checks=checks, headers=self.headers)

    try:
        run_state_machine_as_test(Walk, settings=WALK)
    finally:
        fuzzed.server.use(served)
    return counts


@pytest.mark.parametrize("family", FAMILIES)
def test_walk_the_links_without_auth(
    open_server: Fuzzed, family: str, tmp_path: Path, gauntlet: dict[str, int]
) -> None:
    counts = _walk(open_server, family, tmp_path, gauntlet)
    assert counts["linked"] > counts["steps"] // 3, counts  # the links are followed


@pytest.mark.parametrize("family", FAMILIES)
def test_walk_the_links_with_an_admin_token(
    auth_server: Fuzzed, family: str, tmp_path: Path, gauntlet: dict[str, int]
) -> None:
    counts = _walk(auth_server, family, tmp_path, gauntlet)
    assert counts["linked"] > counts["steps"] // 3, counts
