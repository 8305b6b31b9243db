"""What a page needs from the app besides the store: a tracking client over the app's own
stores, for the domain services that take one (model cards, monitoring reports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from triptych.tracking.client import Client

if TYPE_CHECKING:
    from starlette.requests import Request

    from triptych.artifacts.base import ArtifactStore
    from triptych.store.base import MetadataStore


class AppClient(Client):
    """A :class:`Client` over stores that are already open (the app's), so a service called
    by a page reads the same store the page does and opens nothing of its own."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore | None) -> None:
        super().__init__(tracking_uri=store.url)
        self._store = store
        self._artifacts = artifacts


def client(request: Request) -> Client:
    """The client of the app's current stores (built per request: it holds no connection)."""
    state = request.app.state
    return AppClient(state.store, state.artifacts)


def markdown(text: str) -> str:
    """Markdown (a model card) as HTML with raw HTML disabled: text a user wrote in a
    description is escaped, never markup. markdown-it-py comes with rich."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))
