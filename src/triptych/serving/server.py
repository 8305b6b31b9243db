"""Running a scoring server: build the app for a target, start uvicorn, keep the serving run.

Each server process has one *serving run* (experiment ``serving``) whose artifacts hold its
prediction log; the run starts when the process starts serving and ends FINISHED on a normal
shutdown (SIGINT/SIGTERM), after the log is flushed. A process that dies is failed by the
heartbeat timeout like any run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput
from triptych.serving import plan as plans
from triptych.serving.app import DEFAULT_MAX_BODY, ScoringApp
from triptych.serving.slots import DEFAULT_POLL_INTERVAL, Routing, Slots

if TYPE_CHECKING:
    from triptych.serving.predlog import PredictionLog
    from triptych.serving.service import ScoringService
    from triptych.serving.telemetry import Telemetry
    from triptych.tracking.client import Client

log = logging.getLogger(__name__)

OPTIONS_ENV = "TRIPTYCH_SERVE_OPTIONS"  # how `--workers N` hands the options to each worker


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``triptych serve`` was asked for."""

    target: str  # a model URI or deployments:/NAME, as given
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body: int = DEFAULT_MAX_BODY
    poll_interval: float = DEFAULT_POLL_INTERVAL
    log_predictions: bool = True
    flush_seconds: float = 2.0
    access_log: bool = False

    @property
    def deployment(self) -> str | None:
        return plans.deployment_name(self.target)

    def check(self) -> None:
        if self.workers < 1:
            raise InvalidInput(f"--workers must be at least 1, got {self.workers}")
        if self.max_body < 1:
            raise InvalidInput(f"the body-size limit must be positive, got {self.max_body}")
        if not 0 < self.port < 65536:
            raise InvalidInput(f"invalid port {self.port}")


def plan_source(options: ServeOptions, client: Client) -> Callable[[], plans.ServingPlan]:
    """Where the plan comes from: fixed for a model URI, the store for a deployment."""
    name = options.deployment
    if name is None:
        fixed = plans.ServingPlan(primary=options.target)
        return lambda: fixed
    return DeploymentSource(name, client)


class DeploymentSource:
    """A deployment's plan, read from the store at each call; keeps the record for its
    rollback thresholds and revision."""

    def __init__(self, name: str, client: Client) -> None:
        self.name = name
        self.client = client
        self.record: Any = None

    def __call__(self) -> plans.ServingPlan:
        from triptych import deployments

        self.record = deployments.get(self.name, client=self.client)
        return plans.from_deployment(self.record)


def guard_canary(source: DeploymentSource, telemetry: Telemetry, client: Client) -> str | None:
    """Roll the deployment's canary back when its stats in this process cross the
    deployment's thresholds; returns the reason when it did.

    The rollback names the revision this process serves, so replicas that decide at the
    same time roll back once (the others get Conflict, which is fine)."""
    from triptych import deployments
    from triptych.deployments.rollback import VariantStats, decide
    from triptych.errors import Conflict

    record = source.record
    if record is None or record.canary is None:
        return None
    stats = telemetry.stats()
    canary = stats.get("canary")
    if canary is None:
        return None
    primary = stats.get("primary") or VariantStats(0, 0, 0.0)
    reason = decide(primary, canary, record.thresholds)
    if reason is None:
        return None
    why = f"automatic: {reason}"
    try:
        latest = deployments.history(record.name, client=client)[-1]
        if latest.revision == record.revision and latest.action == "canary":
            # the canary came with the latest change: undo exactly that change
            deployments.rollback(
                record.name, reason=why, actor="auto", expected_revision=record.revision,
                client=client,
            )  # fmt: skip
        else:  # it came with the creation or changes since: take the canary out
            deployments.set_canary(
                record.name, None, 0, reason=why, actor="auto",
                expected_revision=record.revision, client=client,
            )  # fmt: skip
    except Conflict as e:  # another replica acted first, or the deployment changed
        log.info("canary of %s not rolled back by this process: %s", record.name, e)
        return None
    log.warning("rolled back the canary of deployment %s: %s", record.name, reason)
    return reason


class ServingLifecycle:
    """Start and stop of one server process: models, serving run, prediction log, threads."""

    def __init__(
        self, options: ServeOptions, client: Client, slots: Slots, service: ScoringService
    ) -> None:
        self.options = options
        self.client = client
        self.slots = slots
        self.service = service
        self.run_id: str | None = None
        self.predictions: PredictionLog | None = None

    def start(self) -> None:
        if self.slots.routing is None:
            self.slots.load()
        if self.options.log_predictions:
            from triptych.serving import predlog

            self.run_id = predlog.start_serving_run(self.options.target, client=self.client)
            self.client.writer.watch(self.run_id)
            self.predictions = predlog.PredictionLog(
                self.client, self.run_id, flush_seconds=self.options.flush_seconds
            )
            self.service.record_with(self.predictions.record)
        self.slots.start()

    def stop(self) -> None:
        from triptych.store.entities import RunStatus

        self.slots.stop()
        self.service.shadow.stop()
        if self.predictions is not None:
            self.predictions.close()
        if self.run_id is not None:
            self.client.writer.finish(self.run_id, RunStatus.FINISHED)
            self.run_id = None


def build_app(
    options: ServeOptions,
    client: Client | None = None,
    *,
    source: Callable[[], plans.ServingPlan] | None = None,
) -> ScoringApp:
    """The app for ``options`` with its models loaded (errors here are the user's: a bad
    address, a missing model, an untrusted model file). ``source`` replaces where the plan
    comes from (e.g. a fixed canary plan)."""
    from triptych.serving.service import ScoringService
    from triptych.serving.telemetry import Telemetry
    from triptych.tracking.client import Client

    options.check()
    c = client or Client()
    telemetry = Telemetry()
    plan_from = source or plan_source(options, c)
    slots = Slots(plan_from, c, poll_interval=options.poll_interval)
    service = ScoringService(slots, telemetry, deployment=options.deployment)
    if isinstance(plan_from, DeploymentSource):
        guarded = plan_from
        slots.after_refresh = lambda: guard_canary(guarded, telemetry, c)
    slots.on_change = lambda routing: _routing_changed(telemetry, routing)
    telemetry.extra.append(lambda: _count_calls(telemetry, slots))
    slots.load()
    lifecycle = ServingLifecycle(options, c, slots, service)
    return ScoringApp(
        service,
        max_body=options.max_body,
        lifecycle=lifecycle,
        metadata=lambda: metadata(slots, lifecycle),
        openapi=lambda: openapi(slots),
    )


def _routing_changed(telemetry: Telemetry, routing: Routing) -> None:
    present = set()
    for slot in routing.slots():
        who = slot.scorer.identity
        telemetry.set_model(slot.variant, who.name, who.version)
        present.add(slot.variant)
    for variant in plans.VARIANTS:
        if variant not in present:
            telemetry.drop_variant(variant)


def _count_calls(telemetry: Telemetry, slots: Slots) -> None:
    routing = slots.routing
    if routing is not None:
        for slot in routing.slots():
            telemetry.predict_calls.labels(slot.variant).set(slot.scorer.batcher.calls)


def metadata(slots: Slots, lifecycle: ServingLifecycle | None = None) -> dict[str, Any]:
    """What ``GET /metadata`` answers: the primary model and every variant."""
    routing = slots.routing
    assert routing is not None

    def describe(slot: Any) -> dict[str, Any]:
        scorer = slot.scorer
        model = scorer.model
        return {
            **scorer.identity.to_dict(),
            "address": slot.address,
            "flavour": model.manifest.flavour,
            "model_class": model.manifest.model_class,
            "signature": model.signature.to_dict() if model.signature else None,
            "columns": [
                {"name": n, "dtype": d}
                for n, d in zip(scorer.columns.names, scorer.columns.dtypes, strict=True)
            ],
            "fingerprint": scorer.fingerprint,
        }

    primary = describe(routing.primary)
    variants = {s.variant: describe(s) for s in routing.slots()}
    return {
        **primary,
        "deployment": routing.plan.deployment,
        "plan": asdict(routing.plan),
        "variants": variants,
        "serving_run_id": lifecycle.run_id if lifecycle is not None else None,
    }


def openapi(slots: Slots) -> dict[str, Any]:
    from triptych.serving.openapi import document

    routing = slots.routing
    assert routing is not None
    scorer = routing.primary.scorer
    who = scorer.identity
    signature = scorer.model.signature
    return document(
        scorer.columns,
        title=f"triptych scoring server: {routing.primary.address}",
        version=str(who.version) if who.version is not None else who.uri,
        output=signature.output.to_dict() if signature and signature.output else None,
    )


def app_from_env() -> ScoringApp:
    """The app of one worker when ``--workers N`` > 1 (uvicorn's factory)."""
    _configure_logging()
    return build_app(ServeOptions(**json.loads(os.environ[OPTIONS_ENV])))


def _configure_logging() -> None:
    logger = logging.getLogger("triptych")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def serve(
    options: ServeOptions, *, on_ready: Callable[[ScoringApp | None], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (blocking)."""
    from triptych.listener import check_port, run

    options.check()
    _configure_logging()
    check_port(options.host, options.port)

    def app() -> ScoringApp:
        built = build_app(options)
        if on_ready is not None:
            on_ready(built)
        return built

    def before_workers() -> None:
        check_addresses(options)
        os.environ[OPTIONS_ENV] = json.dumps(asdict(options))
        if on_ready is not None:
            on_ready(None)

    run(
        options.host,
        options.port,
        access_log=options.access_log,
        workers=options.workers,
        app=app,
        factory="triptych.serving.server:app_from_env",
        before_workers=before_workers,
    )


def check_addresses(options: ServeOptions) -> None:
    """Fail before forking workers when an address names nothing."""
    from triptych.serving.slots import identify
    from triptych.tracking.client import Client

    c = Client()
    for address in plan_source(options, c)().addresses().values():
        identify(address, c)
