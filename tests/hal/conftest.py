"""Fixtures for the hardware layer: simulated pins (gpiozero MockFactory with traced pins) and
a `sim` board, both reset in `finally` so no pin state leaks between tests."""

from __future__ import annotations

import time

import pytest
from gpiozero import Device

from hal.board import Board, BoardSpec
from hal.sim_pins import SimPinFactory


@pytest.fixture
def pins():
    """A fresh MockFactory (traced pins), also installed as gpiozero's default factory."""
    previous = Device.pin_factory
    factory = SimPinFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def board():
    previous = Device.pin_factory
    sim = Board(BoardSpec(backend="sim"))
    try:
        yield sim
    finally:
        sim.close()
        Device.pin_factory = previous


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
