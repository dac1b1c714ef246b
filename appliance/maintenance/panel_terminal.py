"""`appliance panel`: the front panel's menus in a terminal, to use or demonstrate the panel on
a laptop. The display is drawn as text; keys stand in for the buttons:

    up: w, k or the up arrow          down: s, j or the down arrow
    OK: Enter, o or the right arrow   back: b, Backspace or the left arrow
    a capital letter (W, S, O, B) is a long press;  q or Ctrl-D quits

Changes are written through the same validated path as `appliance config set`, and as there,
an appliance running on the same configuration file and data directory is asked to reload
(`core.running_record`): the display says "applied" once it has, otherwise "NOT applied yet:"
and why (e.g. no running appliance found). Reboot and factory reset are only recorded here:
this command never reboots the machine it runs on.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from typing import TextIO

from appliance.config import loader
from appliance.core.events import EventBus
from appliance.core.exit_codes import EXIT_OK
from appliance.core.health import HealthView
from appliance.core.running_record import RELOAD_TIMEOUT, ReloadOutcome, reload_running
from appliance.core.runtime import Runtime
from appliance.maintenance.actions import Maintenance, SystemActions
from appliance.maintenance.panel_menus import Busy, PanelMenu

log = logging.getLogger(__name__)

KEYS = {"w": ("up", False), "k": ("up", False), "s": ("down", False), "j": ("down", False),
        "\r": ("ok", False), "\n": ("ok", False), "o": ("ok", False),
        "b": ("back", False), "\x7f": ("back", False), "\b": ("back", False),
        "W": ("up", True), "S": ("down", True), "O": ("ok", True), "B": ("back", True),
        "\x1b[A": ("up", False), "\x1b[B": ("down", False), "\x1b[C": ("ok", False),
        "\x1b[D": ("back", False)}
QUIT = ("q", "Q", "\x04", "\x03")
HELP = "keys: w/s up/down, Enter/o OK, b back, capitals = long press, q quit"


class TerminalRuntime(Runtime):
    """No supervisor here: a saved change is sent to the appliance running on `data_dir`."""

    def __init__(self, bus: EventBus, config_path: Path | None, data_dir: str | Path):
        super().__init__(bus, config_path)
        self.data_dir = data_dir

    def request_reload(self) -> None:
        self.reload_and_wait()

    def reload_and_wait(self, timeout: float = RELOAD_TIMEOUT,
                        cancelled=lambda: False) -> ReloadOutcome:
        outcome = reload_running(self.config_path_for_writes(), self.data_dir, timeout)
        log.info("saved to %s; %s", self.config_path_for_writes(), outcome.describe())
        return outcome


class TerminalPanel:
    """Draws the menu on `out` whenever it changes."""

    def __init__(self, menu_factory, out: TextIO, clear: bool):
        self.out, self.clear = out, clear
        self._lock = threading.Lock()
        self._last: tuple | None = None
        self.menu: PanelMenu = menu_factory(self.draw)

    def draw(self) -> None:
        lines, cursor = self.menu.render()
        frame = (tuple(lines), cursor, self.menu.lit)
        with self._lock:
            if frame == self._last:
                return
            self._last = frame
            border = "+" + "-" * self.menu.cols + "+"
            text = [border] + [f"|{line}|" for line in lines] + [border]
            if cursor is not None:
                text.append(" " * (cursor[1] + 1) + "^")
            if not self.menu.lit:
                text.append("(dimmed)")
            prefix = "\x1b[H\x1b[2J" if self.clear else ""
            suffix = HELP + "\n" if self.clear else ""
            self.out.write(prefix + "\n".join(text) + "\n" + suffix)
            self.out.flush()


def split_keys(data: str) -> list[str]:
    keys, i = [], 0
    while i < len(data):
        if data.startswith("\x1b[", i) and i + 2 < len(data):
            keys.append(data[i:i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


def run(config_arg: str | None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    loaded = loader.load(config_arg)
    bus = EventBus()
    runtime = TerminalRuntime(bus, loaded.path, loaded.config.device.data_dir)
    maintenance = Maintenance(loaded.config, runtime, HealthView(bus),
                              SystemActions(simulated=True))
    size = loaded.config.hal.panel.size
    cols, rows = (int(n) for n in size.split("x"))
    interactive = stdin.isatty()
    panel = TerminalPanel(lambda on_change: PanelMenu(
        maintenance, cols, rows, loaded.config.hal.panel.idle_seconds, on_change=on_change),
        stdout, clear=interactive)
    panel.draw()
    if interactive:
        return _interactive(panel, stdin)
    for key in split_keys(stdin.read()):
        if key in QUIT:
            break
        if key in KEYS:
            panel.menu.press(*KEYS[key])
            _wait_while_busy(panel.menu)
            # The background action's own redraw may not have run yet: draw its result now
            # (an unchanged frame is not drawn twice), before the next key or the exit.
            panel.draw()
    return EXIT_OK


def _wait_while_busy(menu: PanelMenu, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while isinstance(menu.screen, Busy) and time.monotonic() < deadline:
        time.sleep(0.05)


def _interactive(panel: TerminalPanel, stdin: TextIO) -> int:
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                panel.menu.tick()
                continue
            data = os.read(fd, 16).decode("utf-8", "replace")
            if not data:
                return EXIT_OK
            for key in split_keys(data):
                if key in QUIT:
                    return EXIT_OK
                if key in KEYS:
                    panel.menu.press(*KEYS[key])
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
