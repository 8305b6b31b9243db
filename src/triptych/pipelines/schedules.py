"""Schedules and triggers: run a pipeline on a cron expression, a new dataset version or an alert.

A schedule is a row in the metadata store; ``triptych scheduler`` (:mod:`.scheduler`) fires it.
Every firing is claimed in the store under a unique ``(schedule, occurrence)`` key first, so
any number of schedulers over one store fire each occurrence once.

What is due (:func:`due`) is at most **one occurrence per schedule: the newest** one that
happened after the schedule was created (or last resumed) and after its last firing:

* ``cron`` — the latest time the expression matches, at or before now (UTC). Occurrences
  missed while no scheduler ran are skipped, not caught up (Airflow's ``catchup=False``).
* ``dataset`` — the newest version of the dataset: several versions arriving between two
  ticks fire one run, on the newest.
* ``alert`` — the newest alert of that name (``*``: any name) recorded by
  :func:`notify_alert`: an alert storm starts one run, not one per alert.

Occurrence keys: ``2026-01-31T03:00:00Z`` (cron), ``dataset:NAME@VERSION``, ``alert:<event id>``.
"""

from __future__ import annotations

import ast
import builtins
import getpass
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triptych.errors import InvalidInput, NotFound
from triptych.store.base import validate_dataset_name, validate_key
from triptych.store.entities import Firing, Schedule, ScheduleSpec, TriggerEvent

if TYPE_CHECKING:
    from triptych.tracking.client import Client

_EXECUTOR = re.compile(r"^(local|ray|ray://[A-Za-z0-9_.\-]+(:\d+)?)$")
_CRON_HINT = 'use five fields: minute hour day month weekday (UTC), e.g. "0 3 * * *" or @daily'


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from triptych.tracking import fluent

    return fluent._client()


def _user() -> str | None:
    """Who created a schedule: ``$TRIPTYCH_USER`` or the login name (a label, locally)."""
    if os.environ.get("TRIPTYCH_USER"):
        return os.environ["TRIPTYCH_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


# -- cron -------------------------------------------------------------------------------------
def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def check_cron(expression: str) -> str:
    """The expression with normalised spacing; InvalidInput unless it is a standard five-field
    cron expression (or @hourly, @daily…) that matches some date."""
    from croniter import croniter

    text = " ".join(str(expression).split())
    fields = text.split(" ")
    shaped = len(fields) == 5 or (len(fields) == 1 and text.startswith("@"))
    try:
        valid = shaped and croniter.is_valid(text)
        if valid:
            croniter(text, datetime.now(timezone.utc)).get_next(datetime)
    except Exception as e:  # croniter raises several types for dates that never come
        raise InvalidInput(
            f"cron expression {expression!r} never matches a date",
            hint="check the day and month fields (e.g. February has no 30th)",
        ) from e
    if not valid:
        raise InvalidInput(f"invalid cron expression {expression!r}", hint=_CRON_HINT)
    return text


def latest_cron_time(expression: str, now: float) -> datetime | None:
    """The latest time ``expression`` matches at or before ``now`` (epoch seconds), in UTC."""
    from croniter import croniter

    # croniter's get_prev is strict, and occurrences fall on whole seconds: start just past
    # the current second so an occurrence at exactly ``now`` counts.
    start = _utc(float(int(now))) + timedelta(seconds=1)
    try:
        found: datetime = croniter(expression, start).get_prev(datetime)
    except Exception:  # no match in croniter's search window
        return None
    return found.astimezone(timezone.utc)


def next_cron_time(expression: str, now: float) -> datetime | None:
    """The first time ``expression`` matches after ``now`` (epoch seconds), in UTC."""
    from croniter import croniter

    try:
        found: datetime = croniter(expression, _utc(now)).get_next(datetime)
    except Exception:
        return None
    return found.astimezone(timezone.utc)


def cron_occurrence(at: datetime) -> str:
    """The occurrence key of a cron time: ISO 8601 in UTC, to the second."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the pipeline target ----------------------------------------------------------------------
def resolve_pipeline(target: str, workdir: Path) -> str:
    """``FILE`` or ``FILE:function`` with FILE made absolute (relative to ``workdir``); checks
    that the file exists, parses, and defines ``function`` when one is named."""
    text = str(target).strip()
    path_text, function = text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.isidentifier():  # "C:\\x.py" has no identifier after its colon
        path_text, function = head, tail
    if not path_text:
        raise InvalidInput("a schedule needs a pipeline file", hint="e.g. pipeline.py")
    path = Path(path_text).expanduser()
    path = (path if path.is_absolute() else workdir / path).resolve()
    if not path.is_file():
        raise InvalidInput(
            f"pipeline file {path} does not exist",
            hint="pass the Python file that defines the @pipeline function (FILE or FILE:function)",
        )
    if path.suffix != ".py":
        raise InvalidInput(f"pipeline file {path} is not a Python file (.py)")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as e:
        raise InvalidInput(f"pipeline file {path} does not parse: {e}") from None
    if function is not None:
        defined = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):  # training = pipeline(fn)
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if function not in defined:
            raise InvalidInput(
                f"{path} defines no function {function!r}",
                hint="name the @pipeline function after the colon, or give only the file",
            )
        return f"{path}:{function}"
    return str(path)


def default_name(pipeline: str) -> str:
    """A schedule name from its target: the file's stem (and ``-function``)."""
    head, sep, tail = pipeline.rpartition(":")
    if sep and head and tail.isidentifier():
        return f"{Path(head).stem}-{tail}"
    return Path(pipeline).stem


# -- the service ------------------------------------------------------------------------------
def create(
    name: str | None,
    pipeline: str,
    *,
    cron: str | None = None,
    on_dataset: str | None = None,
    on_alert: str | None = None,
    params: Mapping[str, object] | None = None,
    executor: str = "local",
    workdir: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> Schedule:
    """Schedule ``pipeline`` (``FILE`` or ``FILE:function``) to run in ``workdir`` (default:
    the current folder) on exactly one of: a ``cron`` expression (UTC), a new version of
    dataset ``on_dataset``, or an alert named ``on_alert`` (``*``: any). ``name`` defaults
    to the file's stem. Raises InvalidInput (nothing is written) or AlreadyExists."""
    given = {"--cron": cron, "--on-dataset": on_dataset, "--on-alert": on_alert}
    chosen = [flag for flag, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise InvalidInput(
            "a schedule needs exactly one trigger"
            + (f", got {' and '.join(chosen)}" if chosen else ""),
            hint='use one of --cron "0 3 * * *", --on-dataset NAME or --on-alert NAME',
        )
    if cron is not None:
        kind, spec = "cron", check_cron(cron)
    elif on_dataset is not None:
        kind, spec = "dataset", validate_dataset_name(on_dataset)
    else:
        assert on_alert is not None
        kind, spec = "alert", on_alert if on_alert == "*" else validate_key("alert", on_alert)
    if not isinstance(executor, str) or not _EXECUTOR.fullmatch(executor):
        raise InvalidInput(
            f"invalid executor {executor!r}", hint="use local, ray, or ray://host:port"
        )
    folder = Path(workdir if workdir is not None else Path.cwd()).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidInput(f"working folder {folder} does not exist")
    target = resolve_pipeline(pipeline, folder)
    return _client(client).store.create_schedule(
        ScheduleSpec(
            name=name or default_name(target),
            pipeline=target,
            workdir=str(folder),
            kind=kind,
            spec=spec,
            params={str(k): str(v) for k, v in (params or {}).items()},
            executor=executor,
            created_by=_user(),
        )
    )


def get(name: str, *, client: Client | None = None) -> Schedule:
    """The schedule with its last firing. Raises NotFound."""
    return _client(client).store.get_schedule(name)


def list(*, client: Client | None = None) -> builtins.list[Schedule]:
    """Every schedule, by name."""
    return _client(client).store.list_schedules()


def delete(name: str, *, client: Client | None = None) -> None:
    """Remove a schedule and its firing history. Raises NotFound."""
    _client(client).store.delete_schedule(name)


def pause(name: str, *, client: Client | None = None) -> None:
    """Stop firing ``name`` until resumed. Raises NotFound."""
    _client(client).store.set_schedule_enabled(name, False)


def resume(name: str, *, client: Client | None = None) -> None:
    """Fire ``name`` again, from now on: what happened while paused does not fire."""
    _client(client).store.set_schedule_enabled(name, True)


def firings(name: str, limit: int = 20, *, client: Client | None = None) -> builtins.list[Firing]:
    """The latest firings of ``name``, newest first. Raises NotFound."""
    return _client(client).store.list_firings(name, limit)


def notify_alert(
    name: str, payload: Mapping[str, Any] | None = None, *, client: Client | None = None
) -> TriggerEvent:
    """Record that alert ``name`` fired (e.g. ``drift:diabetes``), with what it measured.

    Schedules created with ``on_alert=name`` (or ``"*"``) fire on the next scheduler tick.
    This is the call monitoring makes; it only writes one row."""
    return _client(client).store.add_trigger_event("alert", name, payload)


def _number_after(prefix: str, occurrence: str) -> int | None:
    if not occurrence.startswith(prefix):
        return None
    try:
        return int(occurrence[len(prefix) :])
    except ValueError:
        return None


def _newer(schedule: Schedule, occurrence: str) -> bool:
    """Whether ``occurrence`` comes after the schedule's last firing."""
    last = schedule.last_firing
    if last is None:
        return True
    if schedule.kind == "cron":
        return occurrence > last.occurrence  # same ISO format: text order is time order
    prefix = f"dataset:{schedule.spec}@" if schedule.kind == "dataset" else "alert:"
    new, old = _number_after(prefix, occurrence), _number_after(prefix, last.occurrence)
    return new is not None and (old is None or new > old)


def due(schedule: Schedule, now: float, *, client: Client | None = None) -> builtins.list[str]:
    """The occurrence of ``schedule`` to fire at ``now`` (epoch seconds): none or one, the
    newest (see the module docstring for the catch-up policy). Reads, never writes."""
    if not schedule.enabled:
        return []
    occurrence: str
    if schedule.kind == "cron":
        at = latest_cron_time(schedule.spec, now)
        if at is None or at.timestamp() * 1000 < schedule.active_since:
            return []
        occurrence = cron_occurrence(at)
    elif schedule.kind == "dataset":
        try:
            version = _client(client).store.get_dataset_version(schedule.spec)
        except NotFound:  # the dataset has no versions yet
            return []
        if version.creation_time < schedule.active_since:
            return []
        occurrence = f"dataset:{schedule.spec}@{version.version}"
    elif schedule.kind == "alert":
        events = _client(client).store.list_trigger_events(
            "alert",
            name=None if schedule.spec == "*" else schedule.spec,
            since=schedule.active_since,
            limit=1,
        )
        if not events:
            return []
        occurrence = f"alert:{events[0].event_id}"
    else:  # pragma: no cover - the store refuses other kinds
        return []
    return [occurrence] if _newer(schedule, occurrence) else []


def describe_trigger(schedule: Schedule) -> str:
    """The trigger in words, for tables: ``cron 0 3 * * *``, ``new version of diabetes``…"""
    if schedule.kind == "cron":
        return f"cron {schedule.spec} (UTC)"
    if schedule.kind == "dataset":
        return f"new version of {schedule.spec}"
    return "any alert" if schedule.spec == "*" else f"alert {schedule.spec}"
