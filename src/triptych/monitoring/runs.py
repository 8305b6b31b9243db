"""Storage runs: one tracking run per (purpose, deployment) that holds monitoring's volume data.

Labels and checks are files, not rows; each kind lives as artifacts of a run in the
``monitoring`` experiment, found by a tag whose value is the deployment. The run is a storage
place, not a process: it is finished at once, so no heartbeat sweep ever marks it dead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triptych.tracking.client import Client

MONITORING_EXPERIMENT = "monitoring"


def storage_run(
    tag: str, deployment: str, title: str, *, client: Client, create: bool = False
) -> str | None:
    """The id of the run tagged ``tag = deployment`` (the oldest if several), or None; with
    ``create``, a new one named ``"<title> <deployment>"`` when there is none."""
    quoted = deployment.replace("'", "''")
    page = client.search_runs(None, f"tags.`{tag}` = '{quoted}'", ["start_time ASC"], 1)
    if page.items:
        return page.items[0].run_id
    if not create:
        return None
    experiment = client.store.get_or_create_experiment(MONITORING_EXPERIMENT)
    run = client.create_run(
        experiment.experiment_id,
        name=f"{title} {deployment}",
        tags={tag: deployment},
        capture=False,
    )
    client.set_terminated(run.run_id)
    return run.run_id
