"""Status LEDs show off, on and blink signals on their pins, with the documented timing."""

from __future__ import annotations

import time

from hal.leds import OFF, ON, StatusLeds, blink


def test_blink_follows_its_times(pins):
    leds = StatusLeds({"power": 17}, pins)
    pin = pins.pin(17)
    pin.clear_states()
    leds.show("power", blink(0.1, 0.2))
    time.sleep(0.75)
    leds.close()
    assert len(pin.states) >= 5
    pin.assert_states_and_times([(0.0, False), (0.0, True), (0.1, False), (0.2, True),
                                 (0.1, False), (0.2, True)])


def test_on_and_off_and_active_low(pins):
    leds = StatusLeds({"fault": 22}, pins, active_high=False)
    pin = pins.pin(22)
    assert pin.state is True  # active low: high is dark
    leds.show("fault", ON)
    assert pin.state is False
    leds.show("fault", OFF)
    assert pin.state is True


def test_showing_the_same_signal_again_keeps_the_rhythm(pins):
    leds = StatusLeds({"activity": 27}, pins)
    pin = pins.pin(27)
    leds.show("activity", blink(0.2, 0.2))
    time.sleep(0.1)
    pin.clear_states()
    leds.show("activity", blink(0.2, 0.2))  # would restart with an immediate "on" edge
    time.sleep(0.05)
    assert [s.state for s in pin.states] == [True]
    leds.close()
