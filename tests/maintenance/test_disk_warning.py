"""The LEDs' disk warning end to end: the real data directory monitor, its thresholds set
through the configuration file above (high water) or below (reserve) the real use of the test
file system, drives the fault LED to the README's patterns (warning: blink 1 s / 1 s; fault:
on) and back off when the configuration is relaxed, through the supervisor's live reload."""

from __future__ import annotations

import os
import threading
import time

import pytest

from appliance.config.loader import load_file
from appliance.core.data_dir import DataDirectoryMonitor
from appliance.core.events import EventBus
from appliance.core.health import HealthView, verdict
from appliance.core.supervisor import Supervisor
from appliance.maintenance.led_signals import StatusIndicators
from appliance.system.disk_usage import used_percent
from tests.conftest import write_config
from tests.maintenance.conftest import wait_until

POWER, FAULT = 17, 22


@pytest.fixture
def box(tmp_path, board):
    """Factory: the data directory monitor and the LEDs under a running supervisor, with the
    configuration file's [storage] `settings`; returns (supervisor, health, write)."""
    path = tmp_path / "appliance.toml"
    running = []

    def write(**settings):
        write_config(path, {"device": {"data_dir": str(tmp_path / "data")}, "storage": settings})

    def start(**settings):
        write(**settings)
        config = load_file(path)
        bus = EventBus()
        health = HealthView(bus, expected=lambda: {"datadir", "leds"})
        supervisor = Supervisor(config, [DataDirectoryMonitor(config, bus),
                                         StatusIndicators(config, board, health)],
                                config_path=path, bus=bus, tick=0.05)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        running.append((supervisor, thread))
        wait_until(lambda: supervisor.ready, timeout=10)
        return supervisor, health, write

    yield start
    for supervisor, thread in running:
        supervisor.request_stop()
        thread.join(10)


def assert_blinks_slowly(pin) -> None:
    """The README's warning pattern: blink 1 s on / 1 s off, read from the pin over 2.3 s
    (from mid-blink: the first change comes within 1 s, then one every second; a tolerance
    of 0.15 s, since a loaded test machine delays the blink thread, still tells it from
    every other pattern: 0.5, 0.25, 0.2 and 0.1 s)."""
    pin.clear_states()
    time.sleep(2.3)
    states = pin.states
    assert len(states) >= 3, states
    assert states[1].timestamp <= 1.15, states
    assert [s.state for s in states] == [states[0].state ^ (i % 2 == 1) for i in
                                         range(len(states))], states
    assert all(abs(s.timestamp - 1.0) <= 0.15 for s in states[2:]), states


def reload(supervisor) -> None:
    outcome = supervisor.wait_reload(supervisor.request_reload(), timeout=10)
    assert outcome is not None and outcome.applied, outcome


def test_a_disk_above_its_high_water_mark_blinks_the_fault_led(box, board, tmp_path):
    if used_percent(tmp_path) <= 1:
        pytest.skip("the test file system is almost empty: 1% is the lowest mark")
    supervisor, health, write = box(high_water_percent=1)
    fault = board.pin_factory.pin(FAULT)
    wait_until(lambda: board.pin_factory.pin(POWER).state is True)
    assert verdict(health).reason == "disk above its mark"
    assert str(supervisor.slots[1].component.leds.shown("fault")) == "blink 1s on / 1s off"
    assert_blinks_slowly(fault)
    write(high_water_percent=100)
    reload(supervisor)
    leds = supervisor.slots[1].component.leds
    # shown first, then the LED's blink thread is stopped and the pin written
    wait_until(lambda: str(leds.shown("fault")) == "off" and fault.state is False)
    fault.clear_states()
    time.sleep(1.1)
    assert [s.state for s in fault.states] == [False], fault.states
    assert verdict(health).state == "healthy"


def test_a_disk_under_its_reserve_lights_the_fault_led(box, board, tmp_path):
    fs = os.statvfs(tmp_path)
    free_mb = fs.f_bavail * fs.f_frsize // 2**20
    supervisor, health, write = box(reserve_mb=free_mb + 1024)
    fault = board.pin_factory.pin(FAULT)
    wait_until(lambda: fault.state is True)
    fault.clear_states()
    time.sleep(0.3)
    assert [s.state for s in fault.states] == [True]
    assert verdict(health).reason == "disk full" and health.last_error == "data disk full"
    write()  # the default reserve (500 MB) is under the real free space
    reload(supervisor)
    wait_until(lambda: fault.state is False)
    assert health.disk == "ok"


def test_the_whole_appliance_shows_a_disk_above_its_mark(in_process_appliance, tmp_path):
    if used_percent(tmp_path) <= 1:
        pytest.skip("the test file system is almost empty: 1% is the lowest mark")
    app = in_process_appliance({"storage": {"high_water_percent": 1}})
    health = app.component("leds").health
    fault = app.board.pin_factory.pin(FAULT)
    wait_until(lambda: "disk above its mark" in health.warnings)
    assert_blinks_slowly(fault)
