"""Pages of the model registry: the models, and one model with its versions, aliases, the
audit trail as a timeline (gate decisions and the closed loop's ``loop.*`` actions
included) and the model card of a version."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from triptych.errors import NotFound, TriptychError
from triptych.server.ui.context import client, markdown
from triptych.server.ui.templating import add_page, render

if TYPE_CHECKING:
    from triptych.store.entities import ModelEvent

TIMELINE_LIMIT = 500  # the newest events shown; the CLI has the whole trail


def models(request: Request) -> Response:
    """Every registered model with its aliases and latest version."""
    items = request.app.state.store.list_registered_models()
    return render(request, "models.html", section="models", models=items)


def event_class(event: ModelEvent) -> str:
    """The timeline marker of an event: gates by outcome, the loop's actions apart."""
    if event.action == "gate":
        return "gate-passed" if (event.details or {}).get("passed") else "gate-refused"
    if event.action.startswith("loop."):
        return "loop " + event.action.replace(".", "-")
    return event.action


def event_summary(event: ModelEvent) -> str:
    """One line for an event, besides its reason."""
    details: dict[str, Any] = dict(event.details or {})
    if event.action == "alias":
        before = f" (was v{event.previous_version})" if event.previous_version else ""
        return f"@{event.alias} → v{event.version}{before}"
    if event.action == "unalias":
        return f"@{event.alias} removed"
    if event.action == "gate":
        metric = details.get("metric", "metric")
        outcome = "passed" if details.get("passed") else "refused"
        candidate, champion = _num(details.get("candidate")), _num(details.get("champion"))
        return f"{outcome} on {metric}: candidate {candidate}, champion {champion}"
    if event.action == "rename":
        return f"renamed from {details.get('from')}"
    if event.action.startswith("loop."):
        where = details.get("deployment")
        return f"deployment {where}" if where else ""
    return f"v{event.version}" if event.version else ""


def _num(value: Any) -> str:
    from triptych.server.ui.templating import number

    return "-" if value is None else number(value)


def model(request: Request, name: str, version: int | None = Query(None, ge=1)) -> Response:
    """A model: aliases, versions, the audit trail (newest first) and one version's card
    (``?version=``; by default the version of the first alias, else the latest)."""
    store = request.app.state.store
    registered = store.get_registered_model(name)
    versions = store.list_model_versions(name)
    history = store.model_history(name)
    if version is None:
        aliased = sorted(registered.aliases.items())
        version = aliased[0][1] if aliased else registered.latest_version
    card_html: Markup | None = None
    card_error: str | None = None
    if version is not None:
        from triptych.models.card import card

        try:
            card_html = Markup(markdown(card(f"{name}/{version}", client=client(request))))
        except NotFound as e:
            card_error = e.message
        except TriptychError as e:
            card_error = f"the card could not be built: {e.message}"
    runs = {}
    for v in versions:
        if v.run_id and v.run_id not in runs:
            with contextlib.suppress(NotFound):
                runs[v.run_id] = store.get_run(v.run_id)
    return render(
        request,
        "model.html",
        section="models",
        model=registered,
        versions=list(reversed(versions)),
        runs=runs,
        events=list(reversed(history))[:TIMELINE_LIMIT],
        more_events=max(0, len(history) - TIMELINE_LIMIT),
        event_class=event_class,
        event_summary=event_summary,
        selected=version,
        card=card_html,
        card_error=card_error,
    )


def add_routes(app: FastAPI) -> None:
    add_page(app, "/ui/models", models)
    add_page(app, "/ui/models/{name:path}", model)
