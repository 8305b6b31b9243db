"""Test kits shipped with triptych: the store contract suite and process-state helpers.

Third-party backends (and triptych's own HTTP client, later) run the same contract suite.
"""

from __future__ import annotations

import contextlib


def reset_process_state() -> None:
    """Forget open stores, writers and caches, so a test starts like a new process."""
    from triptych import artifacts, store
    from triptych.tracking import client, fingerprint, fluent

    for run in list(fluent._open_runs.values()):
        # A test that broke its store must not break the next one.
        with contextlib.suppress(Exception):
            run.end()
    fluent._open_runs.clear()
    fluent._stack.set(())
    fluent._experiment_cache.clear()
    fluent._default_client = None
    for writer in list(client._writers.values()):
        writer.close()
    client._writers.clear()
    client._known_envs.clear()
    fingerprint._code_cache.clear()
    store.close_all()
    artifacts.close_all()
