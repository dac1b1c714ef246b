"""The status LEDs' meaning: turns the health picture into one signal per LED.

| situation | power | activity | fault |
|---|---|---|---|
| booting (not every component up yet) | blink 0.5 s / 0.5 s | - | - |
| ready | on | - | - |
| DICOM activity (association open, print job printing) | - | blink 0.1 s / 0.1 s | - |
| warning (queue backlog, printer warning, disk high, TLS certificate*) | - | - | blink 1 s / 1 s |
| fault (component down, disk full, printer failure) | - | - | on |
| update in progress | blink 0.2 s / 0.2 s | - | - |
| identify | blink 0.25 s / 0.25 s | blink 0.25 s / 0.25 s | blink 0.25 s / 0.25 s |

*: the DICOM TLS certificate expires within 30 days, has expired or cannot be read.

Identify overrides everything while it lasts; a fault outranks a warning. The LEDs are driven
from the event bus through `HealthView`, never by the components themselves.
"""

from __future__ import annotations

import logging
import threading

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.health import HealthView, verdict
from hal.board import Board
from hal.errors import HalError
from hal.leds import OFF, ON, LedSignal, StatusLeds, blink

log = logging.getLogger(__name__)

BOOTING = blink(0.5, 0.5)
ACTIVITY = blink(0.1, 0.1)
WARNING = blink(1.0, 1.0)
UPDATING = blink(0.2, 0.2)
IDENTIFY = blink(0.25, 0.25)


def signals(health: HealthView) -> dict[str, LedSignal]:
    """The documented table, as code."""
    if health.identifying:
        return {"power": IDENTIFY, "activity": IDENTIFY, "fault": IDENTIFY}
    if health.updating:
        power = UPDATING
    else:
        power = ON if health.ever_ready else BOOTING
    state = verdict(health).state  # the web page's verdict line reads the same
    fault = ON if state == "failing" else (WARNING if state == "degraded" else OFF)
    return {"power": power, "activity": ACTIVITY if health.active else OFF, "fault": fault}


class StatusIndicators(Component):
    """Component `leds`: shows `signals(health)` on the LEDs whenever the picture changes."""

    name = "leds"

    def __init__(self, config: ApplianceConfig, board: Board, health: HealthView):
        self.board = board
        self.health = health
        self.leds: StatusLeds | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._shown_revision = -1  # the health revision the LEDs show (-1: none yet)
        self.configure(config)
        health.on_change(self.refresh)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings = config.hal.leds

    def start(self) -> None:
        if not self.settings.enabled:
            log.info("status LEDs disabled ([hal.leds] enabled = false)")
            return
        s = self.settings
        try:
            self.leds = self.board.leds({"power": s.power, "activity": s.activity,
                                         "fault": s.fault}, active_high=s.active_high)
        except HalError as exc:
            raise ComponentFailure(str(exc)) from exc
        except Exception as exc:  # gpiozero's own errors: bad pin, pin in use
            raise ComponentFailure(f"cannot drive the status LEDs: {exc}") from exc
        self.refresh()

    def refresh(self) -> None:
        with self._lock:
            leds = self.leds
            if leds is None:
                return
            health = self.health
            revision = health.revision  # read first: a change meanwhile shows next time
            if (revision == self._shown_revision and self._timer is None
                    and not health.identifying):
                # Only associations opened or ended since the last look (one refresh each):
                # the other LEDs cannot have changed.
                leds.show("activity", ACTIVITY if health.active else OFF)
                return
            for name, signal in signals(health).items():
                leds.show(name, signal)
            self._shown_revision = revision
            self._schedule_identify_end()

    def _schedule_identify_end(self) -> None:
        # Identify ends by the clock, not by an event: look again when it is due.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        remaining = self.health.identify_until - self.health.clock()
        if remaining > 0:
            self._timer = threading.Timer(remaining + 0.01, self.refresh)
            self._timer.daemon = True
            self._timer.start()

    def status(self) -> str:
        if self.leds is None:
            return "disabled"
        return ", ".join(f"{n} {self.leds.shown(n)}" for n in self.leds.names)

    def stop(self, timeout: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            leds, self.leds = self.leds, None
            self._shown_revision = -1
        if leds is not None:
            leds.close()

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.restart_if_changed(config)
