"""Component `panel`: the front panel's buttons and character display, running the menus of
`appliance.maintenance.panel_menus` on the board built by `hal.board`."""

from __future__ import annotations

import logging
import threading
import time

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.maintenance.actions import Maintenance
from appliance.maintenance.panel_menus import PanelMenu
from hal.board import Board, DisplaySpec
from hal.display.hd44780 import Hd44780
from hal.errors import HalError
from hal.panel import PanelButtons

log = logging.getLogger(__name__)


class FrontPanel(Component):
    name = "panel"

    def __init__(self, config: ApplianceConfig, board: Board, maintenance: Maintenance,
                 refresh: float = 2.0):
        self.board = board
        self.maintenance = maintenance
        self.refresh = refresh
        self.menu: PanelMenu | None = None
        self.display: Hd44780 | None = None
        self.buttons: PanelButtons | None = None
        self._stop = threading.Event()
        self._redrawn = threading.Event()
        self._thread: threading.Thread | None = None
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings = config.hal.panel
        self.maintenance.update(config)

    def start(self) -> None:
        s = self.settings
        if not s.enabled:
            log.info("front panel disabled ([hal.panel] enabled = false)")
            return
        cols, rows = (int(n) for n in s.size.split("x"))
        self.menu = PanelMenu(self.maintenance, cols, rows, s.idle_seconds,
                              on_change=self.draw)
        try:
            self.display = self.board.display(DisplaySpec(
                kind=s.display, cols=cols, rows=rows, rs=s.lcd_rs, e=s.lcd_e,
                data=(s.lcd_d4, s.lcd_d5, s.lcd_d6, s.lcd_d7),
                backlight=s.lcd_backlight or None, i2c_bus=s.i2c_bus,
                i2c_address=s.i2c_address))
            self.buttons = self.board.buttons(
                {"up": s.button_up, "down": s.button_down, "ok": s.button_ok,
                 "back": s.button_back}, self.menu.press, bounce_time=s.debounce,
                long_press=s.long_press)
        except HalError as exc:
            self.stop(1.0)
            raise ComponentFailure(str(exc)) from exc
        except Exception as exc:  # gpiozero's errors: pin in use, bad pin
            self.stop(1.0)
            raise ComponentFailure(f"cannot start the front panel: {exc}") from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)
        self._thread.start()
        self.draw()

    def _run(self) -> None:
        # Sleeps until the menu has something due (dimming, a long line's next scroll step),
        # the next refresh, a redraw (a press: `draw` sets `_redrawn`) or stop.
        next_refresh = time.monotonic() + self.refresh
        while not self._stop.is_set():
            menu = self.menu
            if menu is None:
                return
            wait = min(menu.due_in(), next_refresh - time.monotonic())
            if self._redrawn.wait(max(wait, 0.0)):
                self._redrawn.clear()
                continue
            if self._stop.is_set() or self.menu is None:
                return
            self.menu.tick()
            if time.monotonic() >= next_refresh:
                # status values (IP, queue) change by themselves
                next_refresh = time.monotonic() + self.refresh
                self.draw()

    def draw(self) -> None:
        self._redrawn.set()
        menu, display = self.menu, self.display
        if menu is None or display is None:
            return
        try:
            lines, cursor = menu.render()
            display.show(lines, cursor)
            display.backlight(menu.lit)
        except Exception:
            log.exception("front panel: drawing failed")

    def check(self) -> None:
        if self.settings.enabled and (self._thread is None or not self._thread.is_alive()):
            raise ComponentFailure("front panel thread stopped")

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        return f"{self.settings.display} {self.settings.size}"

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._redrawn.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for device in (self.buttons, self.display):
            if device is not None:
                try:
                    device.close()
                except Exception:
                    log.debug("closing panel device failed", exc_info=True)
        self.buttons = self.display = None
        self.menu = None

    def reconfigure(self, config: ApplianceConfig) -> None:
        if not self.restart_if_changed(config):
            self.draw()
