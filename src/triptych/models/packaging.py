"""``log_model``: a model as a folder of artifacts of its run.

    <name>/model.skops          (model.pkl with serializer="pickle")
    <name>/manifest.json        flavour, serializer, file digest, signature, requirements…
    <name>/input_example.json   the example, as records (when one was given)

The folder is written in one go (``log_artifacts``: blobs first, then one tree update), and
a name already used in the run is refused, so a model folder never mixes two models.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import Conflict, InvalidInput, NotFound, TriptychWarning
from triptych.models import flavours
from triptych.models.manifest import EXAMPLE_FILE, MANIFEST_FILE, MODEL_FILES, Manifest
from triptych.models.serializers import SERIALIZERS
from triptych.models.signature import Signature

if TYPE_CHECKING:
    from triptych.store.entities import Environment, Run
    from triptych.tracking.client import Client
    from triptych.tracking.fluent import ActiveRun


@dataclass(frozen=True)
class LoggedModel:
    """Where a model was logged: ``uri`` is ``runs:/<run_id>/<path>``."""

    run_id: str
    path: str
    uri: str
    manifest: Manifest


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    serializer: str = "skops",
    run: ActiveRun | None = None,
) -> LoggedModel:
    """Log a fitted ``model`` as the folder ``name`` of the active run (or of ``run``).

    ``input_example`` (a DataFrame, a dict of lists or a list of records) is stored and, when
    no ``signature`` is given, the signature is inferred from it — the output by calling
    ``predict`` on it; without either, the input columns come from the estimator
    (``feature_names_in_``, ``n_features_in_``). ``serializer="pickle"`` writes a pickle,
    which ``load_model`` reads only with ``allow_pickle=True``."""
    from triptych.artifacts import paths
    from triptych.tracking import fluent

    active = run if run is not None else fluent.active_run()
    if active is None:
        raise InvalidInput(
            "no active run to log the model to",
            hint="wrap the code in: with triptych.start_run(): ..., or pass run=",
        )
    if serializer not in SERIALIZERS:
        raise InvalidInput(
            f"unknown serializer {serializer!r}",
            hint="use 'skops' (the default; safe to load) or, explicitly, 'pickle'",
        )
    path = paths.normalise(name)
    flavour = flavours.detect(model)
    client = active.client
    if client.store.walk_artifacts(active.run_id, path):
        raise Conflict(
            f"run {active.run_id} already has artifacts at {path!r}",
            hint="log the model under another name",
        )
    final_signature = _signature(model, input_example, signature)
    info = client.get_run(active.run_id)  # now: log_input since the start changed it
    env = _environment(client, info)

    from triptych import __version__
    from triptych.artifacts.base import digest_file
    from triptych.models.serializers import dump

    with tempfile.TemporaryDirectory(prefix="triptych-model-") as tmp:
        folder = Path(tmp)
        model_file = folder / MODEL_FILES[serializer]
        dump(model, model_file, serializer)
        blob = digest_file(model_file)
        if input_example is not None:
            _write_example(input_example, folder / EXAMPLE_FILE)
        manifest = Manifest(
            flavour=flavour.name,
            serializer=serializer,
            model_file=model_file.name,
            sha256=blob.digest,
            size=blob.size,
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
            signature=final_signature.to_dict() if final_signature else None,
            requirements=requirements(model, flavour, serializer, env),
            run_id=active.run_id,
            fingerprint=info.fingerprint.digest if info.fingerprint else None,
            triptych_version=__version__,
            python=env.python if env else None,
            environment_digest=env.digest if env else None,
            input_example=EXAMPLE_FILE if input_example is not None else None,
            created_at=int(time.time() * 1000),
        )
        (folder / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        if serializer == "skops":
            _warn_untrusted(model_file, path, client)
        client.log_artifacts(active.run_id, folder, artifact_path=path)
    return LoggedModel(active.run_id, path, f"runs:/{active.run_id}/{path}", manifest)


def _signature(
    model: Any, example: Any, given: Signature | Mapping[str, Any] | None
) -> Signature | None:
    from triptych.models.signature import (
        as_signature,
        infer_output,
        infer_signature,
        predict_checked,
        to_frame,
    )

    if given is None:
        return infer_signature(model, example)
    signature = as_signature(given)
    if example is not None:  # the example must fit the signature it comes with
        prediction = predict_checked(model, signature, to_frame(example, signature.names))
        if signature.output is None:
            signature = Signature(signature.inputs, infer_output(prediction))
    return signature


def _environment(client: Client, run: Run) -> Environment | None:
    """The run's recorded environment (the one its fingerprint names)."""
    digest = run.fingerprint.env_digest if run.fingerprint else None
    if not digest:
        return None
    try:
        return client.get_environment(digest)
    except NotFound:
        return None


def requirements(
    model: Any, flavour: flavours.Flavour, serializer: str, env: Environment | None
) -> tuple[str, ...]:
    """``name==version`` for each distribution the model needs, versions from ``env``; a
    distribution ``env`` does not list (or no environment) is named without a version."""
    names = list(flavour.requirements)
    for nested in flavours.nested_flavours(model):
        names += [n for n in nested.requirements if n not in names]
    if serializer == "skops":
        names.append("skops")
    packages = env.packages if env else {}
    return tuple(f"{n}=={packages[n]}" if n in packages else n for n in sorted(set(names)))


def _write_example(example: Any, target: Path) -> None:
    from triptych.models.signature import to_frame

    frame = to_frame(example)
    target.write_text(
        frame.to_json(orient="records", date_format="iso", indent=2), encoding="utf-8"
    )


def _warn_untrusted(model_file: Path, path: str, client: Client) -> None:
    """Say now, not at load time, when the default policy will refuse this file."""
    from triptych.models.serializers import OPT_IN, refused_types
    from triptych.models.trust import TrustPolicy

    policy = TrustPolicy.current(settings=client.settings)
    _, refused = refused_types(model_file, policy, path)
    if refused:
        warnings.warn(
            f"model {path!r} contains type(s) the trust policy does not allow; loading it "
            f"will be refused until they are trusted: {', '.join(refused)} ({OPT_IN})",
            TriptychWarning,
            stacklevel=3,
        )
