"""The status LEDs follow the documented patterns (README, "Status LEDs"), driven only by
events on the bus: pin states and times are checked with gpiozero's assert_states_and_times."""

from __future__ import annotations

import time

import pytest

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.events import EventBus
from appliance.core.health import HealthView
from appliance.maintenance.led_signals import StatusIndicators
from tests.conftest import echoscu
from tests.maintenance.conftest import wait_until

POWER, ACTIVITY, FAULT = 17, 27, 22


@pytest.fixture
def leds(board):
    """Indicators on a sim board, with one component 'dicom' known to the health view."""
    bus = EventBus()
    health = HealthView(bus, expected=lambda: {"dicom"})
    indicators = StatusIndicators(ApplianceConfig(), board, health)
    indicators.start()
    yield bus, board.pin_factory, indicators
    indicators.stop(1.0)


def settle(pin, seconds: float):
    pin.clear_states()
    time.sleep(seconds)
    return [s.state for s in pin.states]


def test_booting_blinks_power_then_ready_turns_it_on(leds):
    bus, pins, _ = leds
    power = pins.pin(POWER)
    time.sleep(0.05)  # blinking since start: on at 0, off at 0.5 s, on at 1.0 s
    power.clear_states()
    time.sleep(1.1)
    first = power.states[1]
    assert first.timestamp < 0.5
    power.assert_states_and_times([(0.0, power.states[0].state), (first.timestamp, first.state),
                                   (0.5, not first.state)])
    assert len(power.states) >= 3
    bus.publish("component", name="dicom", state="running", error="", failures=0)
    assert settle(power, 0.6) == [True]


def ready(bus):
    bus.publish("component", name="dicom", state="running", error="", failures=0)


def test_association_open_blinks_activity_until_it_closes(leds):
    bus, pins, _ = leds
    ready(bus)
    activity = pins.pin(ACTIVITY)
    activity.clear_states()
    bus.publish("association_open", peer="127.0.0.1:5000")
    time.sleep(0.45)
    activity.assert_states_and_times([(0.0, False), (0.0, True), (0.1, False), (0.1, True),
                                      (0.1, False)])
    bus.publish("association", peer="127.0.0.1:5000", outcome="released")
    assert settle(activity, 0.3) == [False]


def test_print_job_running_is_activity(leds):
    bus, pins, indicators = leds
    ready(bus)
    bus.publish("print_job", job="1", state="printing")
    assert str(indicators.leds.shown("activity")) == "blink 0.1s on / 0.1s off"
    bus.publish("print_job", job="1", state="done")
    assert pins.pin(ACTIVITY).state is False


@pytest.mark.parametrize("topic, data", [
    ("queue", {"destination": "pacs", "pending": 500, "backlog": True}),
    ("printer", {"name": "film", "state": "warning", "info": "film low"}),
    ("disk", {"state": "high", "free_bytes": 10}),
])
def test_warnings_blink_the_fault_led_slowly(leds, topic, data):
    bus, pins, _ = leds
    ready(bus)
    fault = pins.pin(FAULT)
    fault.clear_states()
    bus.publish(topic, **data)
    time.sleep(1.1)
    fault.assert_states_and_times([(0.0, False), (0.0, True), (1.0, False)])
    assert len(fault.states) >= 3


@pytest.mark.parametrize("topic, data", [
    ("component", {"name": "storage", "state": "failed", "error": "disk gone", "failures": 1}),
    ("disk", {"state": "full", "free_bytes": 0}),
    ("storage", {"kind": "space", "low": True, "free_bytes": 0}),
    ("printer", {"name": "film", "state": "failure", "info": "jammed"}),
])
def test_faults_light_the_fault_led(leds, topic, data):
    bus, pins, _ = leds
    ready(bus)
    bus.publish("queue", destination="pacs", pending=9, backlog=True)  # a fault outranks it
    bus.publish(topic, **data)
    assert settle(pins.pin(FAULT), 0.3) == [True]


def test_changes_between_association_events_show_at_once(leds):
    # Association events only touch the activity LED; whatever else changed in between (a
    # fault, a warning, identify, its end) is still shown, at the event that changed it.
    bus, pins, indicators = leds
    ready(bus)
    shown = indicators.leds.shown
    for n in range(3):
        bus.publish("association_open", peer=f"127.0.0.1:{5000 + n}")
    assert (str(shown("activity")), str(shown("fault"))) == ("blink 0.1s on / 0.1s off", "off")
    bus.publish("disk", state="full", free_bytes=0)
    assert str(shown("fault")) == "on"
    bus.publish("association", peer="127.0.0.1:5000", outcome="released")
    bus.publish("disk", state="high", free_bytes=10)
    assert str(shown("fault")) == "blink 1s on / 1s off"
    bus.publish("association", peer="127.0.0.1:5001", outcome="released")
    assert str(shown("activity")) == "blink 0.1s on / 0.1s off"  # one still open
    bus.publish("identify", seconds=0.3)
    bus.publish("association", peer="127.0.0.1:5002", outcome="released")
    assert {str(shown(n)) for n in ("power", "activity", "fault")} == {
        "blink 0.25s on / 0.25s off"}  # identify outranks the end of activity
    wait_until(lambda: str(shown("activity")) == "off", timeout=2)
    assert (str(shown("power")), str(shown("fault"))) == ("on", "blink 1s on / 1s off")
    bus.publish("association_open", peer="127.0.0.1:5003")
    bus.publish("disk", state="ok", free_bytes=10**9)
    bus.publish("association", peer="127.0.0.1:5003", outcome="released")
    assert [str(shown(n)) for n in ("power", "activity", "fault")] == ["on", "off", "off"]
    assert pins.pin(FAULT).state is False and pins.pin(ACTIVITY).state is False


def test_update_in_progress_blinks_power_fast(leds):
    bus, pins, _ = leds
    ready(bus)
    power = pins.pin(POWER)
    power.clear_states()
    bus.publish("update", state="running", info="bundle 1.2")
    time.sleep(0.45)
    power.assert_states_and_times([(0.0, True), (0.2, False), (0.2, True)])
    assert len(power.states) >= 3
    bus.publish("update", state="done")
    assert settle(power, 0.3) == [True]


def test_identify_blinks_everything_then_stops(leds):
    bus, pins, _ = leds
    ready(bus)
    for pin in (POWER, ACTIVITY, FAULT):
        pins.pin(pin).clear_states()
    bus.publish("identify", seconds=0.7)
    time.sleep(0.3)
    for pin in (ACTIVITY, FAULT):
        pins.pin(pin).assert_states_and_times([(0.0, False), (0.0, True), (0.25, False)])
    wait_until(lambda: pins.pin(ACTIVITY).state is False and pins.pin(POWER).state is True
               and pins.pin(FAULT).state is False, timeout=2)
    assert settle(pins.pin(POWER), 0.4) == [True]


class Flaky(Component):
    """A component that fails its health check once `broken` is set."""

    name = "flaky"

    def __init__(self):
        self.broken = False

    def start(self):
        if self.broken:
            raise ComponentFailure("still broken")

    def stop(self, timeout):
        pass

    def check(self):
        if self.broken:
            raise ComponentFailure("flaky broke")


def test_a_failed_component_turns_the_fault_led_on(in_process_appliance):
    flaky = Flaky()
    app = in_process_appliance(extra_components=[flaky])
    fault = app.board.pin_factory.pin(FAULT)
    power = app.board.pin_factory.pin(POWER)
    wait_until(lambda: power.state is True)
    assert fault.state is False, app.supervisor.status_line()
    flaky.broken = True
    wait_until(lambda: fault.state is True, timeout=5)
    assert app.state("flaky") == "failed"
    flaky.broken = False
    wait_until(lambda: app.state("flaky") == "running", timeout=10)
    wait_until(lambda: fault.state is False, timeout=5)


def test_a_dicom_association_lights_activity_while_open(in_process_appliance):
    app = in_process_appliance()
    seen: list[tuple[str, int]] = []
    health = app.component("leds").health
    app.bus.subscribe(lambda e: seen.append((e.topic, health.open_associations)),
                      "association_open")
    app.bus.subscribe(lambda e: seen.append((e.topic, health.open_associations)),
                      "association")
    assert echoscu(app.port).returncode == 0
    wait_until(lambda: len(seen) == 2)
    assert seen == [("association_open", 1), ("association", 0)]


def test_a_stored_instance_refreshes_nothing_but_low_space_does():
    """Storage publishes one `storage` event per instance: only its "space" kind changes the
    picture, so only that one calls the listeners (the LEDs' refresh)."""
    bus = EventBus()
    health = HealthView(bus)
    calls = []
    health.on_change(lambda: calls.append(health.storage_low))
    for kind in ("stored", "replaced", "duplicate"):
        bus.publish("storage", kind=kind, instance_id=1, sop_instance_uid="1.2",
                    calling_aet="CT1")
    assert calls == []
    bus.publish("storage", kind="space", low=True, free_bytes=1, reserve_mb=10)
    assert calls == [True] and "disk full" in health.faults
