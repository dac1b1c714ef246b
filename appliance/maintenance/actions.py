"""What a technician can do from the front panel and the serial console, in one place, so both
behave the same: change settings (through `config.editor.set_value`, the one validated write
path, then a live reload whose outcome `set_values` waits for and returns), C-ECHO a
configured peer, identify the box, reboot, factory reset, and read the status lines both show.

Rebooting and applying network settings go through `SystemActions`: on the board it runs the
system's commands; in `sim` (and in tests) it only records what it would have done, so nothing
here can reboot a development machine.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from appliance.config.editor import set_value
from appliance.config.loader import load_file
from appliance.config.schema import ApplianceConfig
from appliance.core.component import ComponentState
from appliance.core.errors import ApplianceError, ConfigError
from appliance.core.event_topics import Topic
from appliance.core.health import HealthView
from appliance.core.running_record import ReloadOutcome
from appliance.core.runtime import Runtime
from appliance.dicom.verification import EchoResult, echo_peer
from appliance.maintenance.config import NetworkConfig
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

FACTORY_FILE = "appliance.factory.toml"
SIOCGIFADDR = 0x8915


class ActionFailed(ApplianceError, RuntimeError):
    """A maintenance action could not be carried out; the message says why."""


class SystemActions:
    """Reboot and network apply. `simulated`: record instead of acting."""

    def __init__(self, simulated: bool, run: Callable = subprocess.run):
        self.simulated = simulated
        self.run = run
        self.recorded: list[str] = []

    def _do(self, what: str, command: list[str]) -> str:
        if self.simulated:
            self.recorded.append(what)
            log.warning("sim: %s requested (recorded, not done: %s)", what, " ".join(command))
            return f"{what} recorded (simulated hardware)"
        log.warning("%s: running %s", what, " ".join(command))
        try:
            self.run(command, check=True, timeout=30, capture_output=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ActionFailed(f"{what} failed: {exc}") from exc
        return f"{what} started"

    def reboot(self) -> str:
        return self._do("reboot", ["systemctl", "reboot"])

    def apply_network(self, interface: str) -> str:
        self._do("network reload", ["networkctl", "reload"])
        return self._do(f"network apply {interface}", ["networkctl", "reconfigure", interface])


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of a local interface, read from the kernel (no traffic), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", name[:15].encode()))
    except OSError:
        return None
    return socket.inet_ntoa(packed[20:24])


class Maintenance:
    """The actions behind the panel's menus and the console's commands."""

    def __init__(self, config: ApplianceConfig, runtime: Runtime, health: HealthView,
                 actions: SystemActions, echo_function: Callable[..., EchoResult] = echo_peer):
        self._config = config
        self.runtime = runtime
        self.health = health
        self.actions = actions
        self.echo_function = echo_function
        self._write_lock = threading.RLock()

    @property
    def config(self) -> ApplianceConfig:
        return self._config

    def update(self, config: ApplianceConfig) -> None:
        """A reload happened: show the new values."""
        self._config = config

    @property
    def config_path(self) -> Path:
        return self.runtime.config_path_for_writes()

    # -- settings ---------------------------------------------------------------------------

    def set_values(self, *pairs: tuple[str, str],
                   cancelled: Callable[[], bool] = lambda: False) -> ReloadOutcome:
        """Set each KEY to VALUE in order through the validated write path, then have the
        running appliance apply it; returns whether it was applied, and if not, why not.
        Raises ConfigError (nothing more is written after the first refusal)."""
        self.save_values(*pairs)
        return self.apply(cancelled)

    def save_values(self, *pairs: tuple[str, str]) -> ApplianceConfig:
        """Write only (see `set_values`)."""
        with self._write_lock:  # panel and console may both be writing
            config = self._config
            for key, raw in pairs:
                config = set_value(self.config_path, key, raw)
                log.info("maintenance: %s set", key)
            self._config = config
        return config

    def apply(self, cancelled: Callable[[], bool] = lambda: False) -> ReloadOutcome:
        """Have the running appliance re-read the file; wait until it has."""
        outcome = self.runtime.reload_and_wait(cancelled=cancelled)
        if not outcome.applied:
            log.warning("maintenance: saved, %s", outcome.describe())
        return outcome

    def set_static_network(self, address: str, netmask: str, gateway: str = "",
                           cancelled: Callable[[], bool] = lambda: False) -> ReloadOutcome:
        """Switch to a static address and have the appliance apply it (see `set_values`)."""
        self.save_static_network(address, netmask, gateway)
        return self.apply(cancelled)

    def save_static_network(self, address: str, netmask: str, gateway: str = "") -> None:
        """Write a static address; the whole is checked before anything is written."""
        net = self._config.network
        try:
            NetworkConfig(interface=net.interface, mode="static", address=address,
                          netmask=netmask, gateway=gateway, dns=list(net.dns))
        except ValidationError as exc:
            reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError([f"{self.config_path}: network: {reasons}"]) from None
        # Each step is valid on its own: DHCP first, then the values, then static.
        self.save_values(("network.mode", "dhcp"), ("network.address", address),
                         ("network.netmask", netmask), ("network.gateway", gateway),
                         ("network.mode", "static"))

    # -- actions ----------------------------------------------------------------------------

    def echo_peer(self, name: str, timeout: float = 10.0) -> EchoResult:
        peer = self._config.peer(name)
        if peer is None:
            known = ", ".join(p.name for p in self._config.peers) or "none configured"
            raise ActionFailed(f"no peer named {name!r} (known: {known})")
        return self.echo_function(self._config, peer, timeout=timeout)

    def identify(self, seconds: float | None = None) -> float:
        seconds = self._config.hal.leds.identify_seconds if seconds is None else seconds
        self.runtime.bus.publish(Topic.IDENTIFY, seconds=seconds)
        log.info("identify for %gs", seconds)
        return seconds

    def reboot(self) -> str:
        self.runtime.bus.publish(Topic.MAINTENANCE, action="reboot")
        return self.actions.reboot()

    def factory_reset(self) -> str:
        """Put the factory configuration back (the old file is kept beside it), then reboot.
        Stored images, queues and print jobs are not touched."""
        path = self.config_path
        factory = path.parent / FACTORY_FILE
        try:
            with self._write_lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    shutil.copy2(path, path.with_name(path.name + ".before-factory-reset"))
                text = factory.read_text(encoding="utf-8") if factory.exists() else ""
                write_atomically(path, text.encode("utf-8"))
                self._config = load_file(path)
        except (OSError, ConfigError) as exc:
            raise ActionFailed(f"factory reset failed: {exc}") from exc
        log.warning("factory reset: %s restored from %s", path,
                    factory if factory.exists() else "built-in defaults")
        self.runtime.bus.publish(Topic.MAINTENANCE, action="factory-reset")
        self.runtime.request_reload()
        return "configuration reset to factory defaults; " + self.actions.reboot()

    # -- what the screens show --------------------------------------------------------------

    def ip_address(self) -> str:
        net = self._config.network
        if net.mode == "static":
            return net.address
        return interface_ipv4(net.interface) or "no address"

    def queue_lines(self) -> list[str]:
        if not self.health.queues:
            if not self.health.component_known("forward", "forwarder", "storage"):
                return ["storage is not enabled"]
            return ["no queue reported yet"]
        return [f"{d}: {pending} pending" + (" (backlog)" if backlog else "")
                for d, (pending, backlog) in sorted(self.health.queues.items())]

    def printer_lines(self) -> list[str]:
        if not self.health.printers:
            if not self.health.component_known("print", "printer", "spooler"):
                return ["print is not enabled"]
            return ["no printer status yet"]
        return [f"{n}: {state}" + (f" ({info})" if info else "")
                for n, (state, info) in sorted(self.health.printers.items())]

    def status_lines(self) -> list[str]:
        c = self._config
        lines = [f"AE title {c.dicom.ae_title}, port {c.dicom.port}",
                 f"address {self.ip_address()} ({c.network.mode})"]
        for name, comp in sorted(self.health.components.items()):
            extra = f" ({comp.error})" if comp.state == ComponentState.FAILED and comp.error else ""
            lines.append(f"{name}: {comp.state}{extra}")
        faults, warnings = self.health.faults, self.health.warnings
        lines.append("faults: " + (", ".join(faults) if faults else "none"))
        lines.append("warnings: " + (", ".join(warnings) if warnings else "none"))
        lines.append(f"last error: {self.health.last_error or 'none'}")
        if self.health.web_setup_code:
            lines.append(f"web setup code: {self.health.web_setup_code}")
        return lines

    def network_lines(self) -> list[str]:
        n = self._config.network
        lines = [f"interface {n.interface}, mode {n.mode}", f"address {self.ip_address()}"]
        if n.mode == "static":
            lines += [f"netmask {n.netmask}", f"gateway {n.gateway or 'none'}",
                      "dns " + (", ".join(n.dns) or "none")]
        return lines
