"""The models a server holds, and how they change without a restart.

Each variant (primary, canary, shadow) has a :class:`Slot`: an address as given and the
:class:`~triptych.serving.scorer.Scorer` serving it now. A background thread re-resolves the
addresses every ``poll_interval`` seconds; when an alias moved (or, for a deployment, the
plan changed), the new model is loaded in that thread and swapped in with one attribute
assignment. A request takes the routing once when it arrives, so requests in flight finish on
the model they started with and none fails during a swap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triptych.errors import TriptychError
from triptych.serving.plan import ServingPlan
from triptych.serving.scorer import Identity, Scorer

if TYPE_CHECKING:
    from triptych.tracking.client import Client

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 2.0


class Slot:
    """One variant's model; ``scorer`` is replaced atomically when the address moves."""

    def __init__(self, variant: str, address: str, scorer: Scorer) -> None:
        self.variant = variant
        self.address = address
        self.scorer = scorer


@dataclass(frozen=True)
class Routing:
    """Everything a request needs to pick its model, swapped as one object."""

    plan: ServingPlan
    primary: Slot
    canary: Slot | None = None
    shadow: Slot | None = None

    def slots(self) -> list[Slot]:
        return [s for s in (self.primary, self.canary, self.shadow) if s is not None]


def identify(address: str, client: Client) -> Identity:
    """What ``address`` names now: registry name, version and the ``runs:/`` location."""
    if address.startswith("models:/"):
        from triptych.models import registry

        found = registry.get(address, client=client)
        return Identity(address, found.source, found.name, found.version)
    return Identity(address, address)


def load(address: str, client: Client, identity: Identity | None = None) -> Scorer:
    """Load the model ``address`` names (resolved now unless ``identity`` is given)."""
    from triptych.models.model import load_model

    who = identity or identify(address, client)
    model = load_model(who.uri, client=client)
    scorer = Scorer(model, who)
    scorer.fingerprint = _fingerprint(model.manifest.run_id, client)
    return scorer


def _fingerprint(run_id: str, client: Client) -> dict[str, Any] | None:
    """The triptych of the run that trained the model, for ``/metadata``."""
    try:
        run = client.get_run(run_id)
    except TriptychError:
        return None
    fp = run.fingerprint
    if fp is None:
        return None
    return {
        "digest": fp.digest,
        "run_id": run_id,
        "code": {
            "commit": fp.code.commit,
            "diff_digest": fp.code.diff_digest,
            "digest": fp.code.digest,
        },
        "environment_digest": fp.env_digest,
        "data_digest": fp.data_digest,
        "data": [{"name": i.name, "digest": i.digest, "source": i.source} for i in run.inputs],
    }


class Slots:
    """The routing of one server, kept up to date from its plan source."""

    def __init__(
        self,
        plan_source: Callable[[], ServingPlan],
        client: Client,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_change: Callable[[Routing], None] | None = None,
    ) -> None:
        self._source = plan_source
        self.client = client
        self.poll_interval = poll_interval
        self.on_change = on_change
        self.after_refresh: Callable[[], object] | None = None  # e.g. the canary guard
        self.routing: Routing | None = None
        self.swaps = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one refresh at a time

    def load(self) -> Routing:
        """Build the first routing (blocking); errors propagate (bad address, no model)."""
        with self._lock:
            routing = self._build(self._source(), None)
            self._set(routing)
        return routing

    def _build(self, plan: ServingPlan, old: Routing | None) -> Routing:
        loaded: dict[str, Slot] = {}
        if old is not None:
            loaded = {s.address: s for s in old.slots()}

        def slot(variant: str, address: str | None) -> Slot | None:
            if address is None:
                return None
            found = loaded.get(address)
            if found is not None:
                return Slot(variant, address, found.scorer)
            return Slot(variant, address, load(address, self.client))

        primary = slot("primary", plan.primary)
        assert primary is not None
        return Routing(plan, primary, slot("canary", plan.canary), slot("shadow", plan.shadow))

    def _set(self, routing: Routing) -> None:
        self.routing = routing
        if self.on_change is not None:
            self.on_change(routing)

    def refresh(self) -> bool:
        """Re-read the plan and re-resolve every address; True when something changed."""
        with self._lock:
            current = self.routing
            assert current is not None, "load() first"
            plan = self._source()
            changed = False
            if plan != current.plan:
                log.info("serving plan changed: %s", plan)
                current = self._build(plan, current)
                changed = True
            for s in current.slots():
                who = identify(s.address, self.client)
                if (who.uri, who.version) != (s.scorer.identity.uri, s.scorer.identity.version):
                    log.info("%s moved to %s (%s): loading", s.address, who.version, who.uri)
                    s.scorer = load(s.address, self.client, who)
                    changed = True
            if changed:
                self.swaps += 1
                self._set(current)
            return changed

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        if self._thread is not None or self.poll_interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="triptych-slots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
                if self.after_refresh is not None:
                    self.after_refresh()
                self.last_error = None
            except Exception as e:  # keep serving what is loaded; say why once per change
                message = f"{type(e).__name__}: {e}"
                if message != self.last_error:
                    log.warning("could not refresh the served models (still serving): %s", message)
                self.last_error = message
