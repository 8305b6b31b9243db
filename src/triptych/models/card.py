"""Model cards: one Markdown page that says what a model version is and where it came from."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from triptych.errors import TriptychError

if TYPE_CHECKING:
    from triptych.tracking.client import Client


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def card(ref: str, *, client: Client | None = None) -> str:
    """Markdown for a version (``NAME/3``, ``NAME@champion``): metrics, params, data versions,
    code, environment, lineage and the gate decision that admitted it."""
    from triptych.models import registry
    from triptych.models.manifest import MANIFEST_FILE, Manifest
    from triptych.uris import parse_runs_uri

    c = registry._client(client)
    version = registry.get(ref, client=c)
    lines = [f"# {version.name} — version {version.version}", ""]
    aliases = ", ".join(f"`{a}`" for a in version.aliases) or "none"
    lines += [
        f"- **Address:** `{version.uri}`; aliases: {aliases}",
        f"- **Registered:** {_when(version.creation_time)} by {version.user or '-'}",
        f"- **Files:** `{version.source}`",
    ]
    if version.description:
        lines.append(f"- **Description:** {version.description}")
    if version.tags:
        lines.append(
            "- **Tags:** " + ", ".join(f"`{k}={v}`" for k, v in sorted(version.tags.items()))
        )
    run = c.store.get_run(version.run_id) if version.run_id else None
    if run is None:
        return "\n".join([*lines, "", "No run is recorded for this version."]) + "\n"
    experiment = c.store.get_experiment(run.experiment_id).name
    lines += [
        "",
        "## Training run",
        "",
        f"- **Run:** `{run.run_id}` ({run.name}) in experiment `{experiment}`, "
        f"{run.status.value}, started {_when(run.start_time)}",
    ]
    if run.fingerprint:
        lines.append(f"- **Fingerprint:** `{run.fingerprint.digest}`")
    if run.metrics:
        lines += ["", "## Metrics", "", *_table(sorted(run.metrics.items()), ("metric", "value"))]
    if run.params:
        lines += ["", "## Parameters", "", *_table(sorted(run.params.items()), ("param", "value"))]
    lines += ["", "## Data", ""]
    if run.inputs:
        rows = [
            (i.name, i.rows if i.rows is not None else "-", i.source or "-", f"`{i.digest[:16]}`")
            for i in run.inputs
        ]
        lines += _table(rows, ("input", "rows", "source", "digest"))
    else:
        lines.append("No data inputs were logged.")
    if run.fingerprint:
        code = run.fingerprint.code
        lines += ["", "## Code", ""]
        lines.append(
            f"- **Commit:** `{code.commit or 'not a git checkout'}`"
            + (f" on `{code.branch}`" if code.branch else "")
        )
        if code.remote:
            lines.append(f"- **Remote:** {code.remote}")
        lines.append(f"- **Entry point:** `{code.entry_point or '-'}`")
        if code.diff_digest:
            lines.append(
                f"- **Uncommitted changes:** yes (diff `{code.diff_digest[:16]}` kept with the run)"
            )
        if run.fingerprint.env_digest:
            env = c.store.get_environment(run.fingerprint.env_digest)
            lines += [
                "",
                "## Environment",
                "",
                f"- Python {env.python} on {env.platform}, {len(env.packages)} packages "
                f"(`{env.digest[:16]}`)",
            ]
    location = parse_runs_uri(version.source)
    try:
        text = c.read_artifact(location.run_id, f"{location.path}/{MANIFEST_FILE}")
        manifest: Manifest | None = Manifest.from_json(text, version.source)
    except TriptychError:  # a card still renders when the files are gone
        manifest = None
    if manifest is not None:
        if manifest.requirements:
            pins = ", ".join(f"`{r}`" for r in manifest.requirements)
            lines.append(f"- **Requirements:** {pins}")
        inputs = (manifest.signature or {}).get("inputs") or []
        if inputs:
            cols = ", ".join(
                f"`{col.get('name')}`" + (f" ({col['dtype']})" if col.get("dtype") else "")
                for col in inputs
            )
            lines += ["", "## Signature", "", f"- **Inputs:** {cols}"]
    gates = [
        e for e in c.store.model_history(version.name)
        if e.action == "gate" and (e.details or {}).get("run_id") == run.run_id
    ]  # fmt: skip
    lines += ["", "## Gate decision", ""]
    lines.append(
        f"- {gates[-1].reason} ({_when(gates[-1].time)})"
        if gates
        else "- Registered without the gate."
    )
    lines += ["", "## Lineage", ""]
    for i in run.inputs:
        registered = (i.source or "").startswith("datasets:/")
        data = i.source if registered else f"{i.name} ({i.digest[:12]})"
        lines.append(f"- data `{data}` → run `{run.run_id[:8]}` → `{version.uri}`")
    if not run.inputs:
        lines.append(f"- run `{run.run_id[:8]}` → `{version.uri}`")
    return "\n".join(lines) + "\n"
