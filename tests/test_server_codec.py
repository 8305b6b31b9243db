"""The wire codec: records, enums, tuples and special floats survive the trip; what does not
fit its hint reaches the store unchanged, so the store gives its own error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from triptych.errors import InvalidInput
from triptych.store.entities import (
    CodeState,
    DataInput,
    Fingerprint,
    Lifecycle,
    Metric,
    MonitorSpec,
    MonitorThresholds,
    Page,
    Run,
    RunStatus,
    Thresholds,
)
from triptych.store.http.codec import decode, dumps, loads


def _trip(value: Any, hint: Any) -> Any:
    return decode(hint, loads(dumps(value, hint)))


def _run(**kw: Any) -> Run:
    base: dict[str, Any] = {
        "run_id": "a" * 32,
        "experiment_id": "1",
        "name": "ridge",
        "status": RunStatus.FINISHED,
        "lifecycle": Lifecycle.ACTIVE,
        "start_time": 1,
        "end_time": 2,
        "heartbeat_time": None,
        "user": "ana",
        "parent_run_id": None,
        "params": {"alpha": "0.5"},
        "metrics": {"mse": 3299.0, "bad": math.nan, "up": math.inf},
        "tags": {"t": "x"},
        "inputs": (DataInput("train", "d" * 64, 10, {"age": "float64"}),),
        "fingerprint": Fingerprint(CodeState("c0ffee", digest="e" * 64), "f", "g", "h"),
    }
    return Run(**{**base, **kw})


def test_a_page_of_runs_round_trips() -> None:
    page = Page([_run(), _run(run_id="b" * 32, fingerprint=None)], "next")
    got = _trip(page, Page[Run])
    assert got.next_page_token == "next" and len(got.items) == 2
    first = got.items[0]
    assert first.status is RunStatus.FINISHED and first.inputs == page.items[0].inputs
    assert first.fingerprint == page.items[0].fingerprint
    assert math.isnan(first.metrics["bad"]) and first.metrics["up"] == math.inf


def test_special_floats_are_standard_json_where_the_hint_says_float() -> None:
    raw = dumps([Metric("m", math.nan), Metric("m", -math.inf)], list[Metric])
    assert b"NaN" in raw and raw.count(b'"') > 4  # as strings: plain JSON
    assert loads(raw)[0]["value"] == "NaN"
    got = _trip(MonitorThresholds(ks=math.nan), MonitorThresholds)
    assert math.isnan(got.ks)


def test_free_form_nan_reaches_the_store_as_nan() -> None:
    got = decode(dict[str, Any], loads(dumps({"psi": 0.4, "bad": math.nan}, dict[str, Any])))
    assert got["psi"] == 0.4 and math.isnan(got["bad"])
    assert decode(dict[str, Any], loads(dumps({"note": "NaN"}, dict[str, Any]))) == {
        "note": "NaN"
    }  # a string stays a string


def test_values_that_do_not_fit_pass_through() -> None:
    t = _trip(Thresholds(max_error_rate=True, min_requests="x"), Thresholds)  # type: ignore[arg-type]
    assert t.max_error_rate is True and t.min_requests == "x"  # the store refuses these
    assert _trip(Metric("m", "not a number"), Metric).value == "not a number"  # type: ignore[arg-type]


def test_numpy_scalars_are_numbers() -> None:
    got = _trip(Metric("m", np.float32(0.5), np.int64(3)), Metric)  # type: ignore[arg-type]
    assert (got.value, got.step) == (0.5, 3)


def test_what_json_cannot_carry_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not JSON"):
        dumps({"x": object()}, dict[str, Any])
    with pytest.raises(InvalidInput, match="keys must be text"):
        dumps({1: "x"}, dict[str, Any])


def test_unknown_fields_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="colour"):
        decode(MonitorSpec, {"reference": "datasets:/a@1", "colour": "red"})
    with pytest.raises(InvalidInput, match="MonitorSpec"):
        decode(MonitorSpec, {})  # the reference is required


def test_answers_from_a_newer_server_drop_fields_they_do_not_know() -> None:
    data = loads(dumps(Page([_run()], None), Page[Run]))
    data["items"][0]["colour"] = "red"  # a field this client's Run does not have
    data["extra"] = 1
    with pytest.raises(InvalidInput, match="extra"):
        decode(Page[Run], data)  # the server reads requests strictly
    got = decode(Page[Run], data, strict=False)
    assert got.items[0].run_id == "a" * 32 and not hasattr(got.items[0], "colour")
