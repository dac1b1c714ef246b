"""Component `console`: the serial maintenance console on `[console] url`.

It opens the port, greets, asks for the PIN and runs `console_commands` sessions. When the
USB-serial adapter is unplugged (reads fail, or the device node disappears) it closes the
port and tries again every second; a replugged adapter gets a fresh, locked session. An idle
session is locked again after `[console] idle_logout` seconds.
"""

from __future__ import annotations

import logging
import threading
import time

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.maintenance.actions import Maintenance
from appliance.maintenance.console_commands import ConsoleSession
from appliance.system import logging_setup
from hal.board import Board
from hal.errors import SerialLinkError
from hal.serial_link import LineReader, SerialLink

log = logging.getLogger(__name__)


class SerialConsole(Component):
    name = "console"

    def __init__(self, config: ApplianceConfig, board: Board, maintenance: Maintenance,
                 retry: float = 1.0):
        self.board = board
        self.maintenance = maintenance
        self.retry = retry
        # the process's lines since it started (`appliance run`); a test's own otherwise
        installed = logging_setup.recent_lines()
        self.recent = installed or logging_setup.RecentLines(500)
        self._own_recent = installed is None
        self.link: SerialLink | None = None
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings = config.console
        self.maintenance.update(config)

    def start(self) -> None:
        if not self.settings.url:
            log.info("serial console off ([console] url is empty)")
            return
        self.recent.attach()  # a no-op for the process's, already on the root logger
        self.link = self.board.serial(self.settings.url, self.settings.baudrate)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        link = self.link
        assert link is not None
        reader = LineReader()
        session: ConsoleSession | None = None
        missing_logged = False
        last_input = time.monotonic()
        while not self._stop.is_set():
            if not link.is_open:
                if not link.reopen():
                    if not missing_logged:
                        log.warning("serial console: %s not available; trying again every "
                                    "%gs", link.url, self.retry)
                        missing_logged = True
                    self._stop.wait(self.retry)
                    continue
                missing_logged = False
                self.connected = True
                log.info("serial console: %s connected", link.url)
                session = self._new_session()
                reader.reset()
                last_input = time.monotonic()
                if not self._send(link, session.greeting() + session.prompt):
                    continue
            try:
                data = link.read()
            except SerialLinkError as exc:
                self._gone(exc)
                continue
            assert session is not None
            now = time.monotonic()
            if not data:
                if session.authenticated and now - last_input > self.settings.idle_logout:
                    session.logout()
                    self._send(link, "\nlogged out after "
                               f"{self.settings.idle_logout:g} s idle\n" + session.prompt)
                continue
            last_input = now
            reader.mask = not session.authenticated
            echo, lines = reader.feed(data)
            out = echo.decode("ascii", "replace")
            for line in lines:
                out += session.handle(line) + session.prompt
                reader.mask = not session.authenticated
            self._send(link, out)
        link.close()

    def _new_session(self) -> ConsoleSession:
        return ConsoleSession(self.maintenance, self.settings.pin.get_secret_value(),
                              recent_log=self.recent.tail, cancelled=self._stop.is_set)

    def _send(self, link: SerialLink, text: str) -> bool:
        try:
            link.write(text)
            return True
        except SerialLinkError as exc:
            self._gone(exc)
            return False

    def _gone(self, exc: Exception) -> None:
        self.connected = False
        log.warning("serial console: %s; waiting for it to come back", exc)

    def check(self) -> None:
        if self.settings.url and (self._thread is None or not self._thread.is_alive()):
            raise ComponentFailure("serial console thread stopped")

    def status(self) -> str:
        if not self.settings.url:
            return "off"
        return f"{self.settings.url} " + ("connected" if self.connected else "waiting")

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._own_recent:
            self.recent.detach()
        self.connected = False

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.restart_if_changed(config)
