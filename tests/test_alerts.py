"""Alerts through the service: dedupe, cooldown, status, delivery to the log, to webhooks on a
real HTTP server, and to alert schedules. The store half runs in the contract suite."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from triptych.errors import Conflict, InvalidInput, NotFound
from triptych.monitoring import alerts
from triptych.monitoring.webhooks import Allow
from triptych.pipelines import schedules
from triptych.store.entities import Monitor, MonitorSpec
from triptych.tracking.client import Client
from webhook_kit import Receiver

PIPELINE = """\
from triptych.pipelines import pipeline, step


@step
def hello() -> dict:
    return {"ok": 1}


@pipeline
def retrain():
    hello()
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _monitor(client: Client, webhooks: tuple[str, ...] = (), cooldown_s: int = 3600) -> Monitor:
    """A monitor record (the deployment checks are the service's, tested in test_monitors)."""
    spec = MonitorSpec("datasets:/diabetes@1", webhooks=webhooks, cooldown_s=cooldown_s)
    return client.store.create_monitor("diabetes", spec)


def test_new_alert_is_logged_posted_and_deduped(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    _monitor(client, webhooks=(f"{receiver.url}/hook/s3cret",))
    caplog.set_level(logging.INFO, logger="triptych")
    first = alerts.raise_alert(
        "diabetes", "drift", "age", "warning", "psi 0.31 > 0.2", {"psi": 0.31},
        allow=Allow.parse("127.0.0.1"), client=client,
    )  # fmt: skip
    assert first.is_new and len(first.deliveries) == 1
    delivery = first.deliveries[0].result(timeout=30)
    assert delivery.ok and delivery.status == 200
    (req,) = receiver.requests
    assert req["path"] == "/hook/s3cret"
    body = req["body"]
    assert (body["event"], body["deployment"]) == ("alert.raised", "diabetes")
    assert body["alert"]["id"] == first.alert.id and body["alert"]["payload"] == {"psi": 0.31}
    record = next(r for r in caplog.records if r.name == "triptych.alerts")
    assert record.levelno == logging.WARNING and "psi 0.31" in record.getMessage()
    assert "s3cret" not in caplog.text
    # the same breach again: counted, not delivered again
    again = alerts.raise_alert("diabetes", "drift", "age", "critical", "psi 0.4", client=client)
    assert (again.outcome, again.deliveries, again.alert.count) == ("deduplicated", (), 2)
    assert again.alert.id == first.alert.id
    assert len(receiver.requests) == 1
    assert [a.count for a in alerts.list("deployments:/diabetes", client=client)] == [2]


def test_ack_resolve_and_cooldown() -> None:
    client = Client()
    _monitor(client, cooldown_s=3600)
    a = alerts.raise_alert("diabetes", "performance", "mse", "critical", "worse", client=client)
    acked = alerts.acknowledge(a.alert.id, actor="ana", client=client)
    assert (acked.status, acked.acknowledged_by) == ("acknowledged", "ana")
    assert alerts.list(status="open", client=client) == []
    assert [x.id for x in alerts.list(status="acknowledged", client=client)] == [a.alert.id]
    resolved = alerts.resolve(a.alert.id, actor="bo", client=client)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "bo")
    with pytest.raises(Conflict, match="resolved"):
        alerts.acknowledge(a.alert.id, client=client)
    # within the cooldown a new breach is counted on the resolved alert, not re-raised
    cooled = alerts.raise_alert("diabetes", "performance", "mse", "critical", "x", client=client)
    assert (cooled.outcome, cooled.alert.id, cooled.deliveries) == ("cooled", a.alert.id, ())
    assert alerts.get(a.alert.id, client=client).count == 2


def test_no_cooldown_raises_again_after_resolution() -> None:
    client = Client()
    _monitor(client, cooldown_s=0)
    a = alerts.raise_alert("diabetes", "drift", "bmi", "info", "m", client=client)
    alerts.resolve(a.alert.id, client=client)
    b = alerts.raise_alert("diabetes", "drift", "bmi", "info", "m", client=client)
    assert b.is_new and b.alert.id != a.alert.id


def test_bad_input_and_unknown_monitor_write_nothing() -> None:
    client = Client()
    with pytest.raises(NotFound, match="monitor 'diabetes'"):
        alerts.raise_alert("diabetes", "drift", "age", "warning", "m", client=client)
    _monitor(client)
    with pytest.raises(InvalidInput, match="severity"):
        alerts.raise_alert("diabetes", "drift", "age", "urgent", "m", client=client)
    with pytest.raises(InvalidInput, match="status"):
        alerts.list(status="closed", client=client)
    with pytest.raises(NotFound):
        alerts.acknowledge(12345, client=client)
    assert alerts.list(client=client) == []
    assert client.store.list_trigger_events("alert") == []


def test_a_new_alert_fires_alert_schedules(tmp_path: Path) -> None:
    client = Client()
    (tmp_path / "retrain.py").write_text(PIPELINE)
    schedules.create(
        "on-drift", str(tmp_path / "retrain.py"), on_alert="drift:diabetes", client=client
    )
    schedules.create(
        "on-latency", str(tmp_path / "retrain.py"), on_alert="latency:diabetes", client=client
    )
    _monitor(client)
    time.sleep(0.01)
    raised = alerts.raise_alert("diabetes", "drift", "age", "warning", "psi", client=client)
    (event,) = client.store.list_trigger_events("alert")
    assert event.name == "drift:diabetes"
    assert event.payload["alert"]["id"] == raised.alert.id
    now = time.time()
    assert schedules.due(schedules.get("on-drift", client=client), now, client=client) == [
        f"alert:{event.event_id}"
    ]
    assert schedules.due(schedules.get("on-latency", client=client), now, client=client) == []
    # a deduplicated breach records no new trigger event
    alerts.raise_alert("diabetes", "drift", "age", "warning", "psi", client=client)
    assert len(client.store.list_trigger_events("alert")) == 1
