"""The HD44780 driver's pin sequences (init and characters), decoded the way the controller
latches them on the falling edge of E, give back the text on the screen."""

from __future__ import annotations

import pytest

from hal.board import DisplaySpec
from hal.display.decoder import GpioWatcher, Hd44780Model, SimI2CBus
from hal.display.hd44780 import GpioBus, Hd44780, Pcf8574Bus
from hal.errors import DisplayError

RS, E, DATA = 26, 21, (20, 16, 12, 25)
INIT = [0x30, 0x30, 0x30, 0x20, 0x28, 0x08, 0x01, 0x06, 0x0C]


def wired(pins, cols=16, rows=2):
    model = Hd44780Model(cols, rows)
    pins.listen(GpioWatcher(model, RS, E, DATA))
    display = Hd44780(GpioBus(RS, E, DATA, pins), cols, rows, sleep=lambda s: None)
    return display, model


def test_init_sequence_is_the_datasheets_4bit_one(pins):
    display, model = wired(pins)
    assert model.commands == INIT
    assert model.four_bit and model.display_on
    assert model.text == [" " * 16] * 2


def test_characters_decode_back_to_the_text(pins):
    display, model = wired(pins)
    display.show(["AE EDGEBOX", "Port 11112"])
    assert model.text == ["AE EDGEBOX      ", "Port 11112      "]
    display.show(["AE EDGEBOX", "IP 10.0.0.2 long line cut"])
    assert model.text == ["AE EDGEBOX      ", "IP 10.0.0.2 long"]


def test_each_nibble_is_latched_on_the_falling_edge_of_e(pins):
    display, model = wired(pins)
    e = pins.pin(E)
    e.clear_states()
    display.show(["A"])  # set address (2 nibbles) + 16 characters (32 nibbles)
    assert [s.state for s in e.states][1:] == [True, False] * 34


def test_only_changed_rows_are_rewritten(pins):
    display, model = wired(pins)
    display.show(["same", "first"])
    before = len(model.commands)
    display.show(["same", "second"])
    assert model.commands[before:] == [0x80 | 0x40]
    assert model.text[1].rstrip() == "second"


def test_cursor_is_shown_where_asked(pins):
    display, model = wired(pins)
    display.show(["EDGEBOX", "^"], cursor=(0, 3))
    assert model.cursor == (0, 3)
    display.show(["EDGEBOX", "^"])
    assert model.cursor is None


def test_20x4_rows_use_their_ddram_addresses(pins):
    display, model = wired(pins, 20, 4)
    display.show(["one", "two", "three", "four"])
    assert [row.rstrip() for row in model.text] == ["one", "two", "three", "four"]


def test_characters_outside_the_rom_show_as_question_marks(pins):
    display, model = wired(pins)
    display.show(["a\\b é"])
    assert model.text[0].rstrip() == "a?b ?"


def test_unsupported_geometry_is_refused(pins):
    with pytest.raises(DisplayError, match="16x2 or 20x4"):
        Hd44780(GpioBus(RS, E, DATA, pins), 16, 4, sleep=lambda s: None)


def test_pcf8574_backpack_bytes_decode_back_to_the_text():
    model = Hd44780Model(16, 2)
    i2c = SimI2CBus(model, 0x27)
    display = Hd44780(Pcf8574Bus(i2c, 0x27), sleep=lambda s: None)
    display.show(["I2C backpack", "works"])
    assert model.commands[:len(INIT)] == INIT
    assert [row.rstrip() for row in model.text] == ["I2C backpack", "works"]
    display.backlight(False)
    assert model.backlight is False and i2c.writes[-1] & 0x08 == 0


def test_backpack_at_another_address_does_not_answer():
    with pytest.raises(OSError):
        Pcf8574Bus(SimI2CBus(Hd44780Model(), 0x27), 0x3F)


def test_sim_board_display_is_the_decoded_model(board):
    display = board.display(DisplaySpec(kind="hd44780-gpio", cols=16, rows=2))
    display.show(["board", "sim"])
    assert [row.rstrip() for row in board.display_model.text] == ["board", "sim"]
    display.backlight(False)
    assert board.display_model.backlight is False
