"""The metadata store: the contract, its records, and :func:`open_store` to pick a backend."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triptych.store.base import MetadataStore

_lock = threading.Lock()
_open: dict[str, MetadataStore] = {}


def open_store(url: str) -> MetadataStore:
    """The store for ``url``, opened (and migrated) once per process and then shared."""
    with _lock:
        store = _open.get(url)
        if store is not None:
            return store
    from triptych._lazy import load_object, require
    from triptych.uris import metadata_backend

    backend = metadata_backend(url)
    if backend.module:
        require(backend.module, backend.extra or "")
    cls = load_object(backend.target)
    store = cls(url)  # type: ignore[operator]
    with _lock:
        return _open.setdefault(url, store)


def close_all() -> None:
    """Close every store this process opened (tests use it to start clean)."""
    with _lock:
        stores = list(_open.values())
        _open.clear()
    for store in stores:
        store.close()
