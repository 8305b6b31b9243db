"""Deployments: named, audited specs of what a server serves (primary, canary, shadow).

``triptych.deployments.create("diabetes", "models:/diabetes@champion",
canary="models:/diabetes@challenger", weight=10)``, then ``promote`` or ``rollback``.
``triptych serve deployments:/diabetes`` serves one and follows its changes.

Note: ``rollback`` here is the service function; the automatic-rollback rule lives in the
module ``triptych.deployments.rollback`` and is re-exported as :func:`decide`.
"""

from __future__ import annotations

from triptych.deployments.refs import Target, name_of, target
from triptych.deployments.rollback import Thresholds, VariantStats, decide
from triptych.deployments.service import (
    create,
    delete,
    get,
    history,
    promote,
    rollback,
    set_canary,
    set_shadow,
    set_thresholds,
)
from triptych.deployments.service import list_deployments as list
from triptych.store.entities import Deployment, DeploymentEvent, DeploymentSpec

__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentSpec",
    "Target",
    "Thresholds",
    "VariantStats",
    "create",
    "decide",
    "delete",
    "get",
    "history",
    "list",
    "name_of",
    "promote",
    "rollback",
    "set_canary",
    "set_shadow",
    "set_thresholds",
    "target",
]
