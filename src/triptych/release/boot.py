"""Inside a model image: put the bundled model folder into the image's own store.

``triptych build-image`` copies the model files into the image; the server loads models from
a store, so the image build runs ``python -m triptych.release.boot /srv/model RUN_ID PATH``,
which records a run with the model's *original* run id and the files at their original path.
The served ``runs:/<run_id>/<path>`` is then the same address as in the team's store, and the
answers name the exact files that were released.
"""

from __future__ import annotations

import sys
from pathlib import Path

from triptych.errors import InvalidInput

EXPERIMENT = "image"


def import_model(folder: Path, run_id: str, path: str, source: str) -> str:
    """Record ``folder`` as the model at ``runs:/<run_id>/<path>`` of this store."""
    from triptych.artifacts import paths
    from triptych.models.manifest import MANIFEST_FILE, Manifest
    from triptych.store.entities import RunSpec, RunStatus
    from triptych.tracking.client import Client

    if not (folder / MANIFEST_FILE).is_file():
        raise InvalidInput(f"{folder} holds no {MANIFEST_FILE}")
    manifest = Manifest.from_json((folder / MANIFEST_FILE).read_bytes(), str(folder))
    if manifest.run_id != run_id:
        raise InvalidInput(f"{folder} was logged by run {manifest.run_id}, not {run_id}")
    client = Client()
    experiment = client.store.get_or_create_experiment(EXPERIMENT)
    client.store.create_run(
        RunSpec(
            experiment.experiment_id,
            name=f"image of {source}",
            run_id=run_id,
            tags={"triptych.image.source": source},
        )
    )
    client.log_artifacts(run_id, folder, paths.normalise(path))
    client.set_terminated(run_id, RunStatus.FINISHED)
    return f"runs:/{run_id}/{path}"


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: python -m triptych.release.boot FOLDER RUN_ID PATH SOURCE\n")
        return 2
    folder, run_id, path, source = argv
    print(import_model(Path(folder), run_id, path, source))
    return 0


if __name__ == "__main__":  # pragma: no cover - run by the image build
    sys.exit(main(sys.argv[1:]))
