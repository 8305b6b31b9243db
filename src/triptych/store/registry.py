"""The model registry's half of the metadata store contract (mixed into ``MetadataStore``).

Registered models, their numbered versions, tags, aliases, alias approvals, and the audit
trail of all of it. Every change writes its audit event in the same transaction. A model is
created empty (:meth:`create_registered_model`) or with its first version.

Unless a method says otherwise, the rules of :mod:`triptych.store.base` hold: safe from many
threads and processes, atomic, NotFound for a missing model or version, InvalidInput
(nothing written) for bad names or values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from triptych.store.entities import AliasRequest, ModelEvent, ModelVersion, RegisteredModel


class ModelRegistryStore(ABC):
    """Registered models, versions, aliases and their audit trail; see the module docstring."""

    # -- registered models ------------------------------------------------------------------
    @abstractmethod
    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Create a model without versions and record a ``create`` event. Raises
        AlreadyExists if the name is taken, InvalidInput for a bad name or tag."""

    @abstractmethod
    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        """Merge ``tags`` into the model's and/or set its description; recorded as ``update``.
        Raises NotFound."""

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str, *, user: str | None = None) -> None:
        """Remove one tag of the model; recorded as ``untag``. Raises NotFound for a missing
        model or a tag it does not have."""

    @abstractmethod
    def rename_registered_model(
        self, name: str, new_name: str, *, user: str | None = None, reason: str | None = None
    ) -> RegisteredModel:
        """Rename the model; its versions, tags, aliases, policies, requests and audit trail
        follow, and a ``rename`` event is recorded. References held elsewhere (deployments,
        ``models:/`` URIs) are not rewritten. Raises NotFound, AlreadyExists if ``new_name``
        is taken, InvalidInput for a bad name."""

    @abstractmethod
    def delete_registered_model(
        self, name: str, *, user: str | None = None, reason: str | None = None
    ) -> None:
        """Delete the model with its versions, aliases, tags, policies and requests, each
        deletion recorded; the audit trail stays (keyed by name). Raises NotFound."""

    # -- versions ---------------------------------------------------------------------------
    @abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Register the next version of ``name`` (the model is created on first use) and
        record a ``register`` event, in one transaction. Versions are 1..n per model with no
        gaps or duplicates under concurrent writers, and never reused."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its description, tags and aliases. Raises NotFound."""

    @abstractmethod
    def list_registered_models(self) -> list[RegisteredModel]:
        """All registered models, by name."""

    @abstractmethod
    def get_model_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion:
        """Version ``version``, the one ``alias`` points at, or the latest. Raises NotFound."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first. Raises NotFound."""

    @abstractmethod
    def model_versions_of_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        """Versions registered from these runs (lineage from data to models)."""

    @abstractmethod
    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        user: str | None = None,
    ) -> None:
        """Merge tags and/or set the description; recorded in the audit trail."""

    @abstractmethod
    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Point ``alias`` at ``version`` (atomically, with its audit event); returns the
        version it pointed at before, or None. Raises NotFound, InvalidInput."""

    @abstractmethod
    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, user: str | None = None
    ) -> None:
        """Remove one tag of a version; recorded as ``untag``. Raises NotFound for a missing
        model, version, or a tag the version does not have."""

    @abstractmethod
    def delete_model_alias(
        self, name: str, alias: str, *, user: str | None = None, reason: str | None = None
    ) -> None:
        """Remove an alias, recorded in the audit trail. Raises NotFound."""

    @abstractmethod
    def delete_model_version(
        self, name: str, version: int, *, user: str | None = None, reason: str | None = None
    ) -> None:
        """Delete a version and the aliases pointing at it, each recorded. Raises NotFound."""

    @abstractmethod
    def record_model_event(
        self,
        name: str,
        action: str,
        *,
        version: int | None = None,
        user: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event (e.g. a gate decision) to the model's audit trail."""

    @abstractmethod
    def model_history(self, name: str, *, until: int | None = None) -> list[ModelEvent]:
        """The audit trail of ``name``, oldest first, up to time ``until`` (ms) if given."""

    @abstractmethod
    def set_alias_policy(
        self, name: str, alias: str, require_approval: bool, *, user: str | None = None
    ) -> None:
        """Whether moving ``alias`` of ``name`` needs an approval; recorded. Raises NotFound."""

    @abstractmethod
    def alias_requires_approval(self, name: str, alias: str) -> bool:
        """The policy of ``alias`` (False when none was set). Raises NotFound."""

    @abstractmethod
    def create_alias_request(
        self, name: str, alias: str, version: int, *, user: str | None, reason: str | None = None
    ) -> AliasRequest:
        """Ask for ``alias`` to point at ``version``; recorded. Raises NotFound."""

    @abstractmethod
    def decide_alias_request(
        self, request_id: int, approve: bool, *, user: str | None, reason: str | None = None
    ) -> AliasRequest:
        """Approve (the alias moves, in the same transaction) or reject a pending request.
        Raises NotFound, Conflict when it is not pending, PermissionDenied when the decider
        is the requester or unknown."""

    @abstractmethod
    def list_alias_requests(self, name: str, status: str | None = None) -> list[AliasRequest]:
        """Requests for ``name``, oldest first, optionally only those with ``status``."""
