"""The board: builds the hardware backend named by `[hal] backend`, `sim` or `pi`.

- `sim`: gpiozero's MockFactory (with traced pins, see `hal.sim_pins`), an HD44780 model as the
  display (`board.display_model` shows what is on the screen), a simulated I2C backpack, and
  the serial link on whatever URL is configured (`loop://`, a pty, `socket://`).
- `pi`: gpiozero with the pin factory named by `[hal] pin_factory` (lgpio by default), chosen
  explicitly, and smbus2 for an I2C backpack.

The pin factory is created the first time a device needs it. When the `pi` backend cannot
start (library missing, no GPIO chip, no permission), `BackendUnavailable` says what to do
about it. There is never a fallback from one backend to the other: a box that silently ran on
simulated pins would look alive while its LEDs and buttons did nothing.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass

from hal.display.decoder import GpioWatcher, Hd44780Model, SimI2CBus
from hal.display.hd44780 import GpioBus, Hd44780, Pcf8574Bus
from hal.errors import BackendUnavailable
from hal.leds import StatusLeds
from hal.panel import PanelButtons, PressHandler
from hal.serial_link import SerialLink
from hal.sim_pins import SimPinFactory

log = logging.getLogger(__name__)

BACKENDS = ("sim", "pi")

#: gpiozero pin factories the `pi` backend may use: name -> (module, class, package to install)
PI_PIN_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory",
              "python3-lgpio (apt) or lgpio (pip)"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory",
                "python3-rpi.gpio (apt) or RPi.GPIO (pip)"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory",
               "python3-pigpio and a running pigpiod"),
    "native": ("gpiozero.pins.native", "NativeFactory", "nothing (built into gpiozero)"),
}


@dataclass(frozen=True)
class DisplaySpec:
    """Which character display, and how it is wired."""

    kind: str = "hd44780-gpio"  # "hd44780-gpio", "hd44780-i2c" or "none"
    cols: int = 16
    rows: int = 2
    rs: int = 26
    e: int = 21
    data: tuple[int, int, int, int] = (20, 16, 12, 25)
    backlight: int | None = 24
    i2c_bus: int = 1
    i2c_address: int = 0x27


@dataclass(frozen=True)
class BoardSpec:
    """Everything the hardware layer needs to know, as plain values (hal reads no config)."""

    backend: str = "sim"
    pin_factory: str = "lgpio"


class Board:
    """The devices of one backend. Devices are made on request and closed with the board."""

    def __init__(self, spec: BoardSpec):
        if spec.backend not in BACKENDS:
            raise BackendUnavailable(f"unknown hardware backend {spec.backend!r}: "
                                     "set [hal] backend to \"sim\" or \"pi\"")
        if spec.backend == "pi" and spec.pin_factory not in PI_PIN_FACTORIES:
            raise BackendUnavailable(
                f"unknown pin factory {spec.pin_factory!r}: set [hal] pin_factory to one of "
                + ", ".join(PI_PIN_FACTORIES))
        self.spec = spec
        self._lock = threading.Lock()
        self._factory = None
        #: In `sim`, the HD44780 model that shows what the display shows.
        self.display_model: Hd44780Model | None = None

    @property
    def simulated(self) -> bool:
        return self.spec.backend == "sim"

    @property
    def pin_factory(self):
        """The gpiozero pin factory, created on first use (raises BackendUnavailable)."""
        with self._lock:
            if self._factory is None:
                self._factory = SimPinFactory() if self.simulated else self._pi_factory()
                log.info("hardware backend %s: pin factory %s", self.spec.backend,
                         type(self._factory).__name__)
            return self._factory

    def _pi_factory(self):
        name = self.spec.pin_factory
        module_name, class_name, package = PI_PIN_FACTORIES[name]
        fallback_hint = 'or set [hal] backend = "sim" to run without the board'
        try:
            factory_class = getattr(importlib.import_module(module_name), class_name)
        except ImportError as exc:
            raise BackendUnavailable(
                f"[hal] backend \"pi\" needs the {name} GPIO library, which is not installed "
                f"({exc}): install {package}, choose another [hal] pin_factory, "
                f"{fallback_hint}") from exc
        try:
            return factory_class()
        except Exception as exc:
            raise BackendUnavailable(
                f"[hal] backend \"pi\": the {name} pin factory cannot open the GPIO chip "
                f"({type(exc).__name__}: {exc}): check that this is a Raspberry Pi with "
                f"/dev/gpiochip0 and that the service user may use it (group gpio), "
                f"{fallback_hint}") from exc

    # -- devices ----------------------------------------------------------------------------

    def leds(self, pins: dict[str, int], active_high: bool = True) -> StatusLeds:
        return StatusLeds(pins, self.pin_factory, active_high=active_high)

    def buttons(self, pins: dict[str, int], handler: PressHandler, bounce_time: float = 0.05,
                long_press: float = 1.0) -> PanelButtons:
        return PanelButtons(pins, self.pin_factory, handler, bounce_time=bounce_time,
                            long_press=long_press)

    def display(self, spec: DisplaySpec) -> Hd44780 | None:
        """The character display, or None when `kind` is "none"."""
        if spec.kind == "none":
            return None
        sleep = (lambda _s: None) if self.simulated else time.sleep
        if spec.kind == "hd44780-gpio":
            factory = self.pin_factory
            if self.simulated:
                self.display_model = Hd44780Model(spec.cols, spec.rows)
                factory.listen(GpioWatcher(self.display_model, spec.rs, spec.e, spec.data,
                                           spec.backlight))
            bus = GpioBus(spec.rs, spec.e, spec.data, factory, backlight=spec.backlight)
        elif spec.kind == "hd44780-i2c":
            bus = Pcf8574Bus(self._i2c(spec), spec.i2c_address)
        else:
            raise BackendUnavailable(f"unknown display {spec.kind!r}: use \"hd44780-gpio\", "
                                     "\"hd44780-i2c\" or \"none\"")
        try:
            return Hd44780(bus, spec.cols, spec.rows, sleep=sleep)
        except Exception:
            bus.close()
            raise

    def _i2c(self, spec: DisplaySpec):
        if self.simulated:
            self.display_model = Hd44780Model(spec.cols, spec.rows)
            return SimI2CBus(self.display_model, spec.i2c_address)
        hint = 'or set [hal.panel] display = "hd44780-gpio" (or "none")'
        try:
            from smbus2 import SMBus
        except ImportError as exc:
            raise BackendUnavailable(
                f"the I2C display backpack needs smbus2, which is not installed: "
                f"install smbus2 (pip) {hint}") from exc
        try:
            return SMBus(spec.i2c_bus)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot open I2C bus {spec.i2c_bus} ({exc}): enable I2C "
                f"(dtparam=i2c_arm=on in config.txt, module i2c-dev) {hint}") from exc

    def serial(self, url: str, baudrate: int = 115200) -> SerialLink:
        return SerialLink(url, baudrate=baudrate)

    def close(self) -> None:
        with self._lock:
            factory, self._factory = self._factory, None
        if factory is not None:
            factory.close()
