"""Panel buttons: debounce configured on the pin, short press on release, one long press when
held (up/down repeat while held)."""

from __future__ import annotations

import threading
import time

from hal.panel import PanelButtons
from tests.hal.conftest import wait_until

PINS = {"up": 5, "down": 6, "ok": 13, "back": 19}


def make(pins, long_press=0.15):
    got: list[tuple[str, bool]] = []
    buttons = PanelButtons(PINS, pins, lambda name, long: got.append((name, long)),
                           bounce_time=0.05, long_press=long_press)
    return buttons, got


def test_short_press_is_reported_on_release(pins):
    buttons, got = make(pins)
    pins.pin(13).drive_low()
    assert got == []
    pins.pin(13).drive_high()
    assert got == [("ok", False)]
    buttons.close()


def test_long_press_is_reported_once_and_not_as_a_short_press(pins):
    buttons, got = make(pins)
    pins.pin(19).drive_low()
    wait_until(lambda: got)
    time.sleep(0.4)
    pins.pin(19).drive_high()
    assert got == [("back", True)]
    buttons.close()


def test_holding_up_repeats(pins):
    buttons, got = make(pins, long_press=0.1)
    pins.pin(5).drive_low()
    wait_until(lambda: len(got) >= 3)
    pins.pin(5).drive_high()
    assert set(got) == {("up", True)}
    buttons.close()


def test_debounce_is_set_on_every_pin(pins):
    buttons, _ = make(pins)
    assert all(buttons.button(name).pin.bounce == 0.05 for name in PINS)
    assert all(buttons.button(name).pull_up for name in PINS)
    buttons.close()


def test_idle_buttons_run_no_thread(pins):
    """Nothing pressed, nothing running: the long press is timed only while a button is down
    (gpiozero's Button keeps a thread per button that wakes ten times a second)."""
    before = set(threading.enumerate())
    buttons, got = make(pins)
    assert set(threading.enumerate()) - before == set()
    pins.pin(13).drive_low()
    assert [t.name for t in set(threading.enumerate()) - before] == ["panel-hold-ok"]
    pins.pin(13).drive_high()
    wait_until(lambda: set(threading.enumerate()) - before == set())
    assert got == [("ok", False)]
    buttons.close()
