"""`hal.board` builds the configured backend and never falls back: a `pi` backend that cannot
start says how to fix it."""

from __future__ import annotations

import sys

import pytest
from gpiozero.pins.mock import MockFactory

from hal import board as board_module
from hal.board import Board, BoardSpec, DisplaySpec
from hal.errors import BackendUnavailable


def test_sim_backend_uses_mock_pins(board):
    assert isinstance(board.pin_factory, MockFactory)
    leds = board.leds({"power": 17})
    leds.led("power").on()
    assert board.pin_factory.pin(17).state is True


def test_pi_backend_without_its_gpio_library_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "lgpio", None)  # as on a machine without lgpio
    pi = Board(BoardSpec(backend="pi"))
    with pytest.raises(BackendUnavailable) as caught:
        pi.leds({"power": 17})
    message = str(caught.value)
    assert "install python3-lgpio" in message and '[hal] backend = "sim"' in message
    assert pi._factory is None  # nothing was chosen instead


class BrokenFactory:
    def __init__(self):
        raise OSError(2, "No such file or directory: '/dev/gpiochip0'")


def test_pi_backend_that_cannot_open_the_chip_names_the_fix(monkeypatch):
    module = type(sys)("fake_pins")
    module.BrokenFactory = BrokenFactory
    monkeypatch.setitem(sys.modules, "fake_pins", module)
    monkeypatch.setitem(board_module.PI_PIN_FACTORIES, "lgpio",
                        ("fake_pins", "BrokenFactory", "lgpio"))
    with pytest.raises(BackendUnavailable, match="/dev/gpiochip0.*group gpio"):
        _ = Board(BoardSpec(backend="pi")).pin_factory


def test_unknown_backend_and_pin_factory_are_refused():
    with pytest.raises(BackendUnavailable, match="sim.*pi"):
        Board(BoardSpec(backend="mock"))
    with pytest.raises(BackendUnavailable, match="pin_factory"):
        Board(BoardSpec(backend="pi", pin_factory="wiringpi"))


def test_pi_i2c_display_without_smbus2_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "smbus2", None)
    with pytest.raises(BackendUnavailable, match="install smbus2"):
        Board(BoardSpec(backend="pi")).display(DisplaySpec(kind="hd44780-i2c"))


def test_no_display(board):
    assert board.display(DisplaySpec(kind="none")) is None
