"""The serial maintenance console's command language: one line in, some lines out.

A session starts locked: the first thing typed is the PIN from `[console] pin` (three wrong
tries lock it for 30 seconds). Then:

    help                         this list
    status                       components, faults, warnings, last error
    config show                  the effective configuration (secrets masked)
    config get KEY               one value, e.g. dicom.ae_title
    config set KEY VALUE         change one value (validated, saved, applied live)
    echo PEER                    C-ECHO a configured peer
    queue                        the forward queue
    printer                      the printer
    network                      address settings
    network dhcp                 use DHCP
    network static ADDRESS NETMASK [GATEWAY]
    log tail [N]                 the last N log lines (default 20)
    identify [SECONDS]           blink the LEDs to find the box
    reboot confirm               reboot the box
    factory-reset confirm        restore the factory configuration, then reboot
    logout                       lock the console again
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from appliance.config.editor import field_annotation, parse_key, render
from appliance.core.errors import ApplianceError, ConfigError
from appliance.core.running_record import ReloadOutcome
from appliance.maintenance.actions import Maintenance

log = logging.getLogger(__name__)

HELP = __doc__.split("Then:\n\n", 1)[1].rstrip() + "\n"
MAX_ATTEMPTS, LOCKOUT_SECONDS = 3, 30.0


class CommandError(ApplianceError, ValueError):
    """A command line the console cannot carry out; the message is shown after 'error: '."""


class ConsoleSession:
    """One login on the console. `handle(line)` returns the text to send back."""

    def __init__(self, maintenance: Maintenance, pin: str,
                 recent_log: Callable[[int], list[str]] = lambda n: [],
                 clock: Callable[[], float] = time.monotonic,
                 cancelled: Callable[[], bool] = lambda: False):
        self.maintenance = maintenance
        self.cancelled = cancelled  # the console is stopping: stop waiting for a reload
        self.pin = pin
        self.recent_log = recent_log
        self.clock = clock
        self.authenticated = False
        self.failed_attempts = 0
        self.locked_until = 0.0

    def greeting(self) -> str:
        name = self.maintenance.config.device.name
        return f"\nDICOM Edge Appliance {name}: maintenance console\n"

    @property
    def prompt(self) -> str:
        return "edge> " if self.authenticated else "PIN: "

    def handle(self, line: str) -> str:
        if not self.authenticated:
            return self._login(line.strip())
        words = line.split()
        if not words:
            return ""
        try:
            return self._command(words, line)
        except CommandError as exc:
            return f"error: {exc}\n"
        except ConfigError as exc:
            return "".join(f"error: {problem}\n" for problem in exc.problems)
        except ApplianceError as exc:
            return f"error: {exc}\n"
        except Exception:  # a bug must not end the console session
            log.exception("console: command %r failed", words[0])
            return "error: internal error (see log tail)\n"

    def _login(self, attempt: str) -> str:
        now = self.clock()
        if now < self.locked_until:
            return f"locked: too many wrong PINs; try again in {self.locked_until - now:.0f} s\n"
        if attempt and hmac.compare_digest(attempt.encode(), self.pin.encode()):
            self.authenticated, self.failed_attempts = True, 0
            log.info("console: logged in")
            return "PIN accepted. Type help for the commands.\n"
        self.failed_attempts += 1
        log.warning("console: wrong PIN (%d in a row)", self.failed_attempts)
        if self.failed_attempts >= MAX_ATTEMPTS:
            self.failed_attempts = 0
            self.locked_until = now + LOCKOUT_SECONDS
            return f"wrong PIN; locked for {LOCKOUT_SECONDS:.0f} s\n"
        return "wrong PIN\n"

    def logout(self) -> None:
        self.authenticated = False

    # -- commands ---------------------------------------------------------------------------

    def _command(self, words: list[str], line: str) -> str:
        command, args = words[0].lower(), words[1:]
        m = self.maintenance
        if command in ("help", "?"):
            return HELP
        if command == "status":
            return _lines(m.status_lines())
        if command == "config":
            return self._config(args, line)
        if command == "echo":
            _need(args, 1, "echo PEER")
            result = m.echo_peer(args[0])
            return f"{result}\n" if result.ok else f"error: {result}\n"
        if command == "queue":
            return _lines(f"queue: {text}" for text in m.queue_lines())
        if command == "printer":
            return _lines(f"printer: {text}" for text in m.printer_lines())
        if command == "network":
            return self._network(args)
        if command == "log":
            if not args or args[0] != "tail" or len(args) > 2:
                raise CommandError("usage: log tail [N]")
            count = _number(args[1], "N", 1, 500) if len(args) == 2 else 20
            return _lines(self.recent_log(int(count))) or "(no log lines yet)\n"
        if command == "identify":
            seconds = m.identify(_number(args[0], "SECONDS", 1, 3600) if args else None)
            return f"identify: LEDs blinking for {seconds:g} s\n"
        if command in ("reboot", "factory-reset"):
            if args != ["confirm"]:
                return f"{command}: type '{command} confirm' to do it\n"
            done = m.reboot() if command == "reboot" else m.factory_reset()
            return f"{command}: {done}\n"
        if command in ("logout", "exit", "quit"):
            self.logout()
            return "logged out\n"
        raise CommandError(f"unknown command {words[0]!r} (type help)")

    def _config(self, args: list[str], line: str) -> str:
        m = self.maintenance
        if args[:1] == ["show"] and len(args) == 1:
            return render(m.config)
        if args[:1] == ["get"] and len(args) == 2:
            return f"{args[1]} = {_value(m.config, args[1])}\n"
        if args[:1] == ["set"] and len(args) >= 3:
            key = args[1]
            value = line.split(None, 3)[3].strip()
            outcome = m.set_values((key, value), cancelled=self.cancelled)
            return _saved(key, outcome)
        raise CommandError("usage: config show | config get KEY | config set KEY VALUE")

    def _network(self, args: list[str]) -> str:
        m = self.maintenance
        if not args or args == ["show"]:
            return _lines(m.network_lines())
        if args == ["dhcp"]:
            outcome = m.set_values(("network.mode", "dhcp"), cancelled=self.cancelled)
            return _saved("network: DHCP", outcome)
        if args[0] == "static" and len(args) in (3, 4):
            gateway = args[3] if len(args) == 4 else ""
            outcome = m.set_static_network(args[1], args[2], gateway,
                                           cancelled=self.cancelled)
            return _saved("network: static address", outcome)
        raise CommandError("usage: network | network dhcp | "
                           "network static ADDRESS NETMASK [GATEWAY]")


def _saved(what: str, outcome: ReloadOutcome) -> str:
    if outcome.applied:
        return f"{what} set and applied\n"
    return f"{what} saved; {outcome.describe()}\n"


def _value(config, key: str) -> str:
    import json

    try:
        parts = parse_key(key)
        field_annotation(parts)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    node = config.model_dump(mode="json")
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError):
            raise CommandError(f"{key}: not set") from None
    return json.dumps(node)


def _need(args: list[str], count: int, usage: str) -> None:
    if len(args) != count:
        raise CommandError(f"usage: {usage}")


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{what} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise CommandError(f"{what} must be from {low:g} to {high:g}, got {text}")
    return value


def _lines(lines) -> str:
    return "".join(f"{line}\n" for line in lines)
