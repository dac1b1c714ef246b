"""Status LEDs show off, on and blink signals on their pins, with the documented timing."""

from __future__ import annotations

import threading
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


def test_blinks_start_and_stop_without_a_thread_each(pins):
    # The activity LED blinks for every DICOM association: starting and stopping a blink is a
    # pin write for the one blink thread, not a thread made and joined each time.
    leds = StatusLeds({"activity": 27, "power": 17}, pins)
    activity, power = pins.pin(27), pins.pin(17)
    leds.show("power", blink(0.1, 0.1))
    before = threading.active_count()
    for _ in range(50):
        leds.show("activity", blink(0.1, 0.1))
        assert activity.state is True  # the first "on" edge at once
        assert threading.active_count() == before
        leds.show("activity", OFF)
        assert activity.state is False
    assert threading.active_count() == before
    power.clear_states()
    activity.clear_states()
    time.sleep(0.45)
    assert [s.state for s in activity.states] == [False]  # stopped blinks stay dark
    assert len(power.states) >= 4  # the other LED kept its rhythm meanwhile
    leds.close()
    assert threading.active_count() == before - 1


def test_two_leds_blink_each_in_its_own_rhythm(pins):
    leds = StatusLeds({"power": 17, "fault": 22}, pins)
    power, fault = pins.pin(17), pins.pin(22)
    power.clear_states()
    leds.show("power", blink(0.1, 0.2))
    time.sleep(0.05)
    fault.clear_states()
    leds.show("fault", blink(0.2, 0.1))
    time.sleep(0.65)
    leds.close()
    power.assert_states_and_times([(0.0, False), (0.0, True), (0.1, False), (0.2, True),
                                   (0.1, False)])
    fault.assert_states_and_times([(0.0, False), (0.0, True), (0.2, False), (0.1, True),
                                   (0.2, False)])


def test_a_pin_gone_bad_stops_only_its_own_blink(pins, caplog):
    leds = StatusLeds({"power": 17, "activity": 27}, pins)
    leds.show("power", blink(0.05, 0.05))
    leds.show("activity", blink(0.05, 0.05))
    leds.led("power").close()  # its next edge raises in the blink thread
    time.sleep(0.1)
    activity = pins.pin(27)
    activity.clear_states()
    time.sleep(0.25)
    assert len(activity.states) >= 4
    assert any("LED power cannot blink" in r.getMessage() for r in caplog.records)
    leds.close()
