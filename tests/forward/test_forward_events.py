"""The forwarder tells the rest of the box how it is doing: `forward` events (sent, failed)
feed the web page's metrics, `queue` events (pending, backlog) feed the LEDs, front panel and
serial console. Checked end to end on a running appliance through /metrics and through the
health picture the console reads."""

from __future__ import annotations

import httpx

from appliance.core.events import EventBus
from appliance.core.health import HealthView
from tests.conftest import free_port
from tests.forward.conftest import wait_until
from tests.storage.dicom_files import make_study, storescu


def test_forwarded_instances_are_counted_in_the_metrics(appliance, storescp, tmp_path):
    pacs_port = storescp("DCMTKSCP")
    web_port = free_port()
    _, port, _ = appliance({
        "web": {"port": web_port},
        "peers": [{"name": "pacs", "ae_title": "DCMTKSCP", "host": "127.0.0.1",
                   "port": pacs_port}],
        # a short timeout: a response pynetdicom 3.0.4's reactor steals (a known race: README,
        # Storage and forwarding) costs one retry, not the whole wait
        "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0,
                          "timeout": 5.0}]})
    files = make_study(tmp_path / "study", 5)
    assert storescu(port, files).returncode == 0
    url = f"http://127.0.0.1:{web_port}/metrics"
    wait_until(lambda: 'appliance_instances_total{event="forwarded"} 5.0'
               in httpx.get(url, timeout=5).text, 60, what="5 forwarded in /metrics")
    assert 'appliance_instances_total{event="received"} 5.0' in httpx.get(url, timeout=5).text


def test_a_destination_that_is_down_is_reported_as_backlog(tmp_path):
    import shutil

    from appliance.config.loader import validate
    from appliance.dicom.storage import read_meta
    from appliance.forward.component import Forwarder
    from appliance.store.instances import InstanceStore

    config = validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                   "port": free_port()}],  # nothing listens there
        "destinations": [{"peer": "pacs", "retry_initial": 5.0, "retry_max": 10.0}]}, "test")
    bus = EventBus()
    health = HealthView(bus)
    events = []
    bus.subscribe(events.append, topic="queue")
    store = InstanceStore(tmp_path / "data")
    forwarder = Forwarder(config, bus)
    forwarder.start()
    try:
        for path in make_study(tmp_path / "study", 2):
            temp = tmp_path / "incoming.dcm"
            shutil.copy(path, temp)
            outcome = store.commit(temp, read_meta(temp, "CT1"), ["pacs"], "keep_first")
            bus.publish("storage", kind=outcome.action, instance_id=outcome.instance_id)
        expected = {"destination": "pacs", "pending": 2, "backlog": True}
        wait_until(lambda: events and events[-1].data == expected, 20,
                   what="a queue event: 2 pending, backlog")
        assert health.queues["pacs"] == (2, True)
    finally:
        forwarder.stop(5)
        store.close()
