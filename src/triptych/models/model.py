"""``load_model`` and the :class:`Model` it returns.

Loading reads ``manifest.json`` first and decides everything from it and from the platform
policy: a pickle is refused before its bytes are fetched unless ``allow_pickle=True``; the
model file must match the digest and size the manifest records (the artifact store already
checks each blob; this catches a file swapped under the model's path); a skops file is
audited against the trust policy before any object is built.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import IntegrityError, InvalidInput, MissingDependency, NotFound
from triptych.models import flavours
from triptych.models.manifest import MANIFEST_FILE, Manifest
from triptych.models.signature import Signature

if TYPE_CHECKING:
    from triptych.tracking.client import Client

MODELS_SCHEME = "models:/"


class Model:
    """A loaded model: ``predict`` checks its input against the signature first.

    ``raw`` is the estimator itself, for anything the wrapper does not offer."""

    def __init__(self, raw: Any, manifest: Manifest, uri: str) -> None:
        self.raw = raw
        self.manifest = manifest
        self.uri = uri
        self.signature: Signature | None = (
            Signature.from_dict(manifest.signature) if manifest.signature is not None else None
        )

    def __repr__(self) -> str:
        return f"Model({self.uri!r}, flavour={self.manifest.flavour!r})"

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (a DataFrame, a dict of lists, a list of records or a 2-D
        array): a numpy array, or a DataFrame when the model returns one.

        Raises InvalidInput for a missing column or a value of the wrong type (naming the
        column); extra columns are dropped with a TriptychWarning; columns are reordered."""
        import numpy as np
        import pandas as pd

        from triptych.models.signature import model_input, prepare

        if self.signature is None:
            prediction = self.raw.predict(data)
        else:
            frame = prepare(data, self.signature)
            given = model_input(self.raw, frame)
            if isinstance(given, np.ndarray) and isinstance(data, np.ndarray):
                given = data  # checked; passed as is (a copy could change float rounding)
            prediction = self.raw.predict(given)
        if isinstance(prediction, pd.DataFrame):
            return prediction
        return np.asarray(prediction)


def load_model(
    uri: str,
    *,
    trusted_types: str | Sequence[str] | None = None,
    allow_pickle: bool = False,
    client: Client | None = None,
) -> Model:
    """Load the model logged at ``uri`` (``runs:/<run_id>/<path>`` or ``models:/…``).

    ``trusted_types`` adds to the platform's trusted types for this call (``module.Type`` or
    ``module.*``); ``allow_pickle=True`` is needed to read a model logged with
    ``serializer="pickle"``."""
    from triptych.models.serializers import load, refuse_pickle
    from triptych.models.trust import TrustPolicy
    from triptych.uris import parse_runs_uri

    c = _client(client)
    # a bad setting fails before anything is fetched
    policy = TrustPolicy.current(trusted_types, settings=c.settings)
    runs_uri = resolve(uri, client=c)
    ref = parse_runs_uri(runs_uri)
    if not ref.path:
        raise InvalidInput(f"no model path in {runs_uri!r}", hint="use runs:/<run_id>/<path>")
    try:
        text = c.read_artifact(ref.run_id, f"{ref.path}/{MANIFEST_FILE}")
    except NotFound:
        raise NotFound(
            f"no model at {runs_uri}: it has no {MANIFEST_FILE}",
            hint="give the folder triptych.log_model wrote (its uri)",
        ) from None
    manifest = Manifest.from_json(text, runs_uri)
    flavour = flavours.get(manifest.flavour)
    if importlib.util.find_spec(flavour.package) is None:
        pins = [r for r in manifest.requirements if r.partition("==")[0] == flavour.distribution]
        raise MissingDependency(
            f"{runs_uri} is a {flavour.name} model and {flavour.package} is not installed",
            hint=f"pip install '{pins[0] if pins else flavour.distribution}'",
        )
    where = f"{manifest.model_file} of {runs_uri}"
    if manifest.serializer == "pickle" and not allow_pickle:
        refuse_pickle(where)  # before fetching a byte of it
    with tempfile.TemporaryDirectory(prefix="triptych-model-") as tmp:
        local = c.download_artifacts(ref.run_id, f"{ref.path}/{manifest.model_file}", tmp)
        _check_digest(local, manifest, where)
        raw = load(
            local, manifest.serializer, policy=policy, allow_pickle=allow_pickle, where=where
        )
    return Model(raw, manifest, runs_uri)


def resolve(uri: str, *, client: Client | None = None) -> str:
    """The ``runs:/`` URI ``uri`` names: itself, or a ``models:/`` address resolved by the
    model registry."""
    if not isinstance(uri, str):
        raise InvalidInput(f"a model URI must be a string, got {type(uri).__name__}")
    if not uri.startswith(MODELS_SCHEME):
        return uri
    if importlib.util.find_spec("triptych.models.registry") is None:
        raise InvalidInput(
            f"cannot resolve {uri}: this triptych has no model registry",
            hint="load by run instead: runs:/<run_id>/<path>",
        )
    from triptych.models import registry

    resolve_version = getattr(registry, "resolve", None)
    if resolve_version is None:
        raise InvalidInput(
            f"cannot resolve {uri}: the model registry offers no resolve()",
            hint="load by run instead: runs:/<run_id>/<path>",
        )
    resolved = resolve_version(uri, client=client)
    if not isinstance(resolved, str) or not resolved.startswith("runs:/"):
        raise InvalidInput(f"the model registry resolved {uri} to {resolved!r}, not a runs:/ URI")
    return resolved


def _check_digest(local: Path, manifest: Manifest, where: str) -> None:
    from triptych.artifacts.base import digest_file

    blob = digest_file(local)
    if blob.digest != manifest.sha256 or blob.size != manifest.size:
        raise IntegrityError(
            f"{where} does not match its manifest.json: sha256 {blob.digest} ({blob.size} "
            f"bytes) where the manifest records {manifest.sha256} ({manifest.size} bytes)",
            hint="the file was replaced after the model was logged; log the model again",
        )


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()
