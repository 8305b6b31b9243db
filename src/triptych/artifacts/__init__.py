"""Artifact storage: content-addressed blobs behind fsspec, and the safe paths that name them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triptych.artifacts.base import ArtifactStore

_lock = threading.Lock()
_open: dict[tuple[str, str], ArtifactStore] = {}


def open_artifact_store(url: str, s3_endpoint_url: str = "") -> ArtifactStore:
    """The artifact store rooted at ``url``, shared within the process."""
    key = (url, s3_endpoint_url)
    with _lock:
        store = _open.get(key)
        if store is not None:
            return store
    from triptych._lazy import load_object
    from triptych.uris import artifact_backend

    cls = load_object(artifact_backend(url).target)
    store = cls(url, s3_endpoint_url=s3_endpoint_url)  # type: ignore[operator]
    with _lock:
        return _open.setdefault(key, store)


def close_all() -> None:
    with _lock:
        _open.clear()
