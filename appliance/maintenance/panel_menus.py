"""The front panel's menus: what the four buttons do and what the character display shows.

Pure logic, shared by the real panel (`panel_component`) and `appliance panel` in a
terminal: feed it `press(button, long)` and `tick()`, read `render()`. Every change goes
through `Maintenance`, the same validated path as `appliance config set`; the panel then waits
(showing "applying...") until the running appliance has applied it, and says "applied" only
then, or "NOT applied yet:" and why.

A text too long for the display is shown by a short form when it is a known one ("storage
disabled" for "storage is not enabled"), otherwise it scrolls sideways (`tick()` moves it):
it stands still for a moment, moves one character every `scroll_seconds`, stands at its end,
and starts over.

Buttons: up/down move (or change the character under the cursor; holding repeats), OK
selects (in an editor: next position, and on the last position or with a long press: save),
back returns (in an editor: previous position, at the first: cancel). A long press of back
returns to the status screens from anywhere. After `idle_seconds` untouched the panel returns
to the status screens and dims; the next press only wakes it.

The names of the settings it edits are the schema's titles (appliance/config/labels.py), the
same words the web forms show.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable

from appliance.config.labels import title
from appliance.core.errors import ApplianceError, ConfigError
from appliance.core.running_record import ReloadOutcome
from appliance.maintenance.actions import Maintenance
from appliance.maintenance.config import NetworkConfig

log = logging.getLogger(__name__)

#: Characters offered for an AE title, in the order up steps through them.
AE_CHARSET = " ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
DIGITS = "0123456789"

#: Known status texts too long for a 16-character line, and how the display shows them.
SHORT_FORMS = {
    "storage is not enabled": "storage disabled",
    "print is not enabled": "print disabled",
    "no queue reported yet": "not reported yet",
    "no printer status yet": "not reported yet",
}
#: Scroll steps a long line stands still at its start and at its end.
SCROLL_PAUSE = 3


def problem_text(exc: Exception) -> str:
    """'FILE: KEY: reason' -> 'reason' (the panel is too small for paths)."""
    if isinstance(exc, ConfigError) and exc.problems:
        return exc.problems[0].split(": ", 2)[-1]
    return str(exc)


class Screen:
    """One screen. `press` returns the screen to show next (often itself)."""

    parent: Screen | None = None
    #: Long lines scroll sideways (not in editors, where the cursor marks a position).
    scrolls = True

    def lines(self, panel: PanelMenu) -> list[str]:
        raise NotImplementedError

    def cursor(self, panel: PanelMenu) -> tuple[int, int] | None:
        return None

    def press(self, panel: PanelMenu, button: str, long: bool) -> Screen:
        return self.parent or self


class Message(Screen):
    """Text to read; up/down scroll it, OK or back go on to `then`."""

    def __init__(self, lines: list[str], then: Screen | None):
        self.text, self.then, self.top = lines, then, 0

    def lines(self, panel):
        return panel.wrap(self.text)[self.top:]

    def press(self, panel, button, long):
        if button in ("up", "down"):
            limit = max(0, len(panel.wrap(self.text)) - panel.rows)
            self.top = min(limit, max(0, self.top + (1 if button == "down" else -1)))
            return self
        return self.then or StatusScreen()


class StatusScreen(Screen):
    """The status pages; up/down page through them, OK opens the menu."""

    def __init__(self, page: int = 0):
        self.page = page

    def pages(self, panel: PanelMenu) -> list[list[str]]:
        m = panel.maintenance
        config, health = m.config, m.health
        trouble = health.faults or health.warnings
        # A box without a web password shows its one-time setup code first.
        setup = [["Setup code", health.web_setup_code]] if health.web_setup_code else []
        return setup + [
            [config.dicom.ae_title, f"Port {config.dicom.port}", f"IP {m.ip_address()}",
             ("! " + trouble[0]) if trouble else "OK"],
            [f"IP {m.ip_address()}", config.network.mode.upper()],
            ["Queue", *m.queue_lines()],
            ["Printer", *m.printer_lines()],
            ["Last error", health.last_error or "none"],
        ]

    def lines(self, panel):
        pages = self.pages(panel)
        return pages[self.page % len(pages)]

    def press(self, panel, button, long):
        if button == "up":
            self.page = (self.page - 1) % len(self.pages(panel))
        elif button == "down":
            self.page = (self.page + 1) % len(self.pages(panel))
        elif button == "ok":
            return main_menu(self)
        elif button == "back":
            self.page = 0
        return self


class Menu(Screen):
    """A list of (label, action) where action(panel, menu) returns the next screen."""

    def __init__(self, items: list[tuple[str, Callable]], parent: Screen | None):
        self.items, self.parent, self.index = items, parent, 0

    def lines(self, panel):
        first = max(0, self.index - panel.rows + 1)
        return [(">" if i == self.index else " ") + label
                for i, (label, _) in enumerate(self.items)][first:first + panel.rows]

    def press(self, panel, button, long):
        if not self.items:
            return self.parent or self
        if button == "up":
            self.index = (self.index - 1) % len(self.items)
        elif button == "down":
            self.index = (self.index + 1) % len(self.items)
        elif button == "ok":
            return self.items[self.index][1](panel, self)
        elif button == "back":
            return self.parent or StatusScreen()
        return self


class Editor(Screen):
    """Edit `value` one character at a time from `charset`; positions in `fixed` are skipped.
    `save(panel, text)` returns the next screen."""

    scrolls = False

    def __init__(self, title: str, value: str, charset: str, save: Callable,
                 parent: Screen | None, fixed: str = ""):
        self.title, self.charset, self.save, self.parent = title, charset, save, parent
        self.chars = list(value)
        self.fixed = {i for i, ch in enumerate(value) if fixed and ch in fixed}
        self.pos = self._step(-1, +1)

    def _step(self, pos: int, direction: int) -> int:
        pos += direction
        while pos in self.fixed:
            pos += direction
        return pos

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def lines(self, panel):
        if panel.rows >= 4:
            return [self.title, self.text, " " * self.pos + "^", "OK next, hold OK: save"]
        return [self.text, " " * self.pos + "^ " + self.title]

    def cursor(self, panel):
        return (1 if panel.rows >= 4 else 0), self.pos

    def press(self, panel, button, long):
        if button in ("up", "down"):
            current = self.charset.find(self.chars[self.pos])
            step = 1 if button == "up" else -1
            new = (current + step) % len(self.charset) if current >= 0 else 0
            self.chars[self.pos] = self.charset[new]
            return self
        if button == "ok":
            following = self._step(self.pos, +1)
            if long or following >= len(self.chars):
                return self.save(panel, self.text)
            self.pos = following
            return self
        previous = self._step(self.pos, -1)
        if previous < 0:
            return self.parent or StatusScreen()
        self.pos = previous
        return self


class Busy(Screen):
    """Shown while a slow action (a C-ECHO) runs in the background."""

    def __init__(self, text: list[str]):
        self.text = text

    def lines(self, panel):
        return self.text

    def press(self, panel, button, long):
        return self  # wait for the result


class Confirm(Screen):
    def __init__(self, question: str, action: Callable, parent: Screen):
        self.question, self.action, self.parent = question, action, parent

    def lines(self, panel):
        return [self.question, "OK=yes BACK=no"]

    def press(self, panel, button, long):
        if button == "ok":
            return self.action(panel, self.parent)
        if button == "back":
            return self.parent
        return self


# -- the menu tree -------------------------------------------------------------------------

def main_menu(parent: Screen) -> Menu:
    return Menu([(title("dicom.ae_title"), edit_ae_title), (title("dicom.port"), edit_port),
                 (title("network"), network_menu),
                 ("Echo peer", echo_menu), ("Identify", identify),
                 ("Reboot", lambda p, m: Confirm("Reboot?", reboot, m)),
                 ("Factory reset", lambda p, m: Confirm("Factory reset?", factory_reset, m))],
                parent)


def saving(panel: PanelMenu, parent: Screen, done: str, *pairs: tuple[str, str]) -> Screen:
    try:
        panel.maintenance.save_values(*pairs)
    except ApplianceError as exc:
        return Message(["Not saved:", problem_text(exc)], parent)
    return applying(panel, parent, done)


def applying(panel: PanelMenu, parent: Screen, done: str) -> Screen:
    """The change is saved: wait (in the background) until the appliance has applied it."""
    def work() -> Screen:
        return applied_message(done, panel.maintenance.apply(), parent)
    return panel.in_background(Busy([done, "applying..."]), work)


def applied_message(done: str, outcome: ReloadOutcome, parent: Screen) -> Message:
    if outcome.applied:
        return Message([done, "applied"], parent)
    return Message([done, "NOT applied yet:", outcome.reason], parent)


def edit_ae_title(panel: PanelMenu, menu: Screen) -> Screen:
    current = panel.maintenance.config.dicom.ae_title.ljust(16)
    name = title("dicom.ae_title")
    return Editor(name, current, AE_CHARSET, lambda p, text: saving(
        p, menu, f"{name} saved", ("dicom.ae_title", text.strip())), menu)


def edit_port(panel: PanelMenu, menu: Screen) -> Screen:
    port = f"{panel.maintenance.config.dicom.port:05d}"
    name = title("dicom.port")
    return Editor(name, port, DIGITS, lambda p, text: saving(
        p, menu, f"{name} {int(text)} saved", ("dicom.port", str(int(text)))), menu)


def padded_ip(address: str) -> str:
    parts = (address or "0.0.0.0").split(".")
    return ".".join(f"{int(x):03d}" for x in parts)


def parse_ip(text: str) -> str:
    octets = [int(x) for x in text.split(".")]
    if any(o > 255 for o in octets):
        raise ValueError(f"{text} is not an IPv4 address (each part 0-255)")
    return str(ipaddress.IPv4Address(".".join(map(str, octets))))


def network_menu(panel: PanelMenu, menu: Screen) -> Screen:
    net = panel.maintenance.config.network
    return Menu([("DHCP", lambda p, m: saving(p, menu, "DHCP saved",
                                              ("network.mode", "dhcp"))),
                 ("Static address", lambda p, m: static_editor(p, menu, net))], menu)


def static_editor(panel: PanelMenu, menu: Screen, net: NetworkConfig) -> Screen:
    values: dict[str, str] = {}
    steps = [(key, title(f"network.{key}"), value) for key, value in (
        ("address", net.address or "192.168.1.10"), ("netmask", net.netmask or "255.255.255.0"),
        ("gateway", net.gateway or "0.0.0.0"))]

    def editor(index: int) -> Screen:
        key, heading, value = steps[index]

        def save(p: PanelMenu, text: str) -> Screen:
            try:
                values[key] = parse_ip(text)
            except ValueError as exc:
                return Message(["Not saved:", str(exc)], editor(index))
            return editor(index + 1) if index + 1 < len(steps) else finish(p)
        return Editor(heading, padded_ip(value), DIGITS, save, menu, fixed=".")

    def finish(p: PanelMenu) -> Screen:
        gateway = "" if values["gateway"] == "0.0.0.0" else values["gateway"]
        try:
            p.maintenance.save_static_network(values["address"], values["netmask"], gateway)
        except ApplianceError as exc:
            return Message(["Not saved:", problem_text(exc)], menu)
        return applying(p, menu, "Static saved")
    return editor(0)


def echo_menu(panel: PanelMenu, menu: Screen) -> Screen:
    peers = panel.maintenance.config.peers
    if not peers:
        return Message(["No peers", "configured"], menu)
    return Menu([(p.name, lambda pn, m, n=p.name: run_echo(pn, m, n)) for p in peers], menu)


def run_echo(panel: PanelMenu, menu: Screen, name: str) -> Screen:
    def work() -> Screen:
        try:
            result = panel.maintenance.echo_peer(name)
        except ApplianceError as exc:
            return Message([f"Echo {name}", str(exc)], menu)
        if result.ok:
            return Message([f"Echo {name} OK", f"{result.round_trip_ms:.0f} ms"], menu)
        return Message([f"Echo {name} FAILED", result.reason], menu)
    return panel.in_background(Busy([f"Echo {name}...", "please wait"]), work)


def identify(panel: PanelMenu, menu: Screen) -> Screen:
    seconds = panel.maintenance.identify()
    return Message(["Identifying", f"for {seconds:g} s"], menu)


def reboot(panel: PanelMenu, menu: Screen) -> Screen:
    try:
        return Message(["Rebooting", panel.maintenance.reboot()], menu)
    except ApplianceError as exc:
        return Message(["Reboot failed", str(exc)], menu)


def factory_reset(panel: PanelMenu, menu: Screen) -> Screen:
    try:
        return Message(["Factory reset", panel.maintenance.factory_reset()], menu)
    except ApplianceError as exc:
        return Message(["Reset failed", str(exc)], menu)


class PanelMenu:
    """The panel's state. Thread-safe; `on_change()` is called after every change."""

    def __init__(self, maintenance: Maintenance, cols: int = 16, rows: int = 2,
                 idle_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[], None] = lambda: None, scroll_seconds: float = 0.5):
        self.maintenance, self.cols, self.rows = maintenance, cols, rows
        self.idle_seconds, self.clock, self.on_change = idle_seconds, clock, on_change
        self.scroll_seconds = scroll_seconds
        self._lock = threading.RLock()
        self.screen: Screen = StatusScreen()
        self.lit = True
        self.last_press = self.shown_since = clock()
        self._drawn_step = 0
        self._long_lines = True  # what the last render() saw; True until one has run

    def press(self, button: str, long: bool = False) -> None:
        with self._lock:
            self.last_press = self.shown_since = self.clock()
            if not self.lit:
                self.lit = True  # the first press only wakes the panel
            elif long and button == "back":
                self.screen = StatusScreen()
            else:
                self.screen = self.screen.press(self, button, long)
        self.on_change()

    def tick(self) -> None:
        """Called a few times a second: dims when idle, moves long lines along."""
        with self._lock:
            now = self.clock()
            if self.lit and now - self.last_press >= self.idle_seconds \
                    and not isinstance(self.screen, Busy):
                self.screen, self.lit = StatusScreen(), False
                self.shown_since = now
                changed = True
            else:
                changed = self._scrolled()
        if changed:
            self.on_change()

    def due_in(self) -> float:
        """Seconds until `tick()` can change something (dimming, a long line's next scroll
        step); inf when nothing is due. A press or a new screen calls `on_change()`, after
        which the caller asks again."""
        with self._lock:
            now = self.clock()
            due = float("inf")
            if self.lit and not isinstance(self.screen, Busy):
                due = self.last_press + self.idle_seconds - now
            if self.screen.scrolls and self._long_lines:
                shown = max(0.0, now - self.shown_since)
                step = int(shown / self.scroll_seconds)
                due = min(due, (step + 1) * self.scroll_seconds - shown)
            return max(0.0, due)

    def _scroll_step(self) -> int:
        return int(max(0.0, self.clock() - self.shown_since) / self.scroll_seconds)

    def _scrolled(self) -> bool:
        """True when a long line on the screen has moved since it was last drawn."""
        step = self._scroll_step()
        if step == self._drawn_step or not self._long_lines:
            return False
        self._drawn_step = step
        return self.screen.scrolls and any(
            len(self.short_form(str(line))) > self.cols for line in self.screen.lines(self))

    def short_form(self, line: str) -> str:
        """A known text that does not fit, in its short form; anything else as it is."""
        return SHORT_FORMS.get(line, line) if len(line) > self.cols else line

    def window(self, line: str, step: int) -> str:
        """The part of `line` shown at scroll step `step`."""
        extra = len(line) - self.cols
        if extra <= 0:
            return line
        position = step % (extra + 2 * SCROLL_PAUSE) - SCROLL_PAUSE
        start = min(max(position, 0), extra)
        return line[start:start + self.cols]

    def in_background(self, busy: Busy, work: Callable[[], Screen]) -> Screen:
        def run() -> None:
            try:
                result = work()
            except Exception as exc:  # a bug must not leave the panel busy for ever
                log.exception("panel: background action failed")
                result = Message(["Failed:", str(exc)], None)
            with self._lock:
                if self.screen is busy:
                    self.screen = result
                    self.shown_since = self.clock()
            self.on_change()
        threading.Thread(target=run, name="panel-action", daemon=True).start()
        return busy

    def render(self) -> tuple[list[str], tuple[int, int] | None]:
        with self._lock:
            lines = self.screen.lines(self)
            cursor = self.screen.cursor(self)
            if self.screen.scrolls:
                step = self._scroll_step()
                fitted = [self.short_form(str(line)) for line in lines]
                self._long_lines = any(len(line) > self.cols for line in fitted)
                lines = [self.window(line, step) for line in fitted]
        shown = [(lines[i] if i < len(lines) else "")[: self.cols].ljust(self.cols)
                 for i in range(self.rows)]
        return shown, cursor

    def wrap(self, text: list[str]) -> list[str]:
        out: list[str] = []
        for line in text:
            line = str(line)
            while len(line) > self.cols:
                cut = line.rfind(" ", 0, self.cols + 1)
                cut = cut if cut > 0 else self.cols
                out.append(line[:cut])
                line = line[cut:].lstrip()
            out.append(line)
        return out
