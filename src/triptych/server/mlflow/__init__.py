"""MLflow's REST API on triptych's server, so MLflow's own client tracks into triptych.

``MLFLOW_TRACKING_URI=http://host:5000`` points MLflow's client (fluent API, autolog,
``MlflowClient``) at ``triptych server``; what it writes are ordinary triptych runs, models and
artifacts in the same store. The subset served is what the client uses for tracking and the
registry (see docs/mlflow.md): ``tracking.py`` (experiments, runs, metrics), ``models.py``
(MLflow 3's logged models), ``registry.py`` (registered models, versions, aliases) and
``artifacts.py`` (the ``mlflow-artifacts`` proxy). Each route declares its permission like
every other route of the server, and errors take MLflow's shape (``errors.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def add_routes(app: FastAPI) -> None:
    """Mount the routes under ``/api/2.0/mlflow/`` and ``/api/2.0/mlflow-artifacts/``."""
    from triptych.server.mlflow.routing import add_to

    add_to(app)
