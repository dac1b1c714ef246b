"""Network settings: `[network]` written as a systemd-networkd `.network` file on the data
partition, and applied.

The image links `/etc/systemd/network/10-appliance.network` to
`DATA_DIR/network/10-appliance.network`, so the file survives updates of the read-only root.
On the board (`[hal] backend = "pi"`) a change is applied with `networkctl reload` and
`networkctl reconfigure IFACE`; in `sim` the file is written and the apply step only recorded.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ApplianceError, ComponentFailure
from appliance.maintenance.config import NetworkConfig
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

FILE_NAME = "10-appliance.network"


def render_network_file(net: NetworkConfig) -> str:
    """The .network file for these settings."""
    lines = ["# Written by the DICOM Edge Appliance from [network] in appliance.toml.",
             "# Change it from the front panel, the serial console or `appliance config set`.",
             "", "[Match]", f"Name={net.interface}", "", "[Network]"]
    if net.mode == "dhcp":
        lines.append("DHCP=ipv4")
    else:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{net.netmask}").prefixlen
        lines.append(f"Address={net.address}/{prefix}")
        if net.gateway:
            lines.append(f"Gateway={net.gateway}")
    lines += [f"DNS={server}" for server in net.dns]
    return "\n".join(lines) + "\n"


def network_file(config: ApplianceConfig) -> Path:
    return Path(config.device.data_dir).absolute() / "network" / FILE_NAME


class NetworkSettings(Component):
    """Component `network`: keeps the .network file equal to `[network]` and applies changes."""

    name = "network"

    def __init__(self, config: ApplianceConfig, actions):
        self.actions = actions
        self.last_applied = ""
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config

    def start(self) -> None:
        self._write()

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.configure(config)
        self._write()

    def _write(self) -> None:
        path = network_file(self.config)
        text = render_network_file(self.config.network)
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current == text:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text.encode("utf-8"))
        except OSError as exc:
            raise ComponentFailure(f"cannot write {path}: {exc.strerror or exc}") from exc
        net = self.config.network
        log.info("network settings written to %s (%s%s)", path, net.mode,
                 f" {net.address}/{net.netmask}" if net.mode == "static" else "")
        try:
            self.last_applied = self.actions.apply_network(net.interface)
        except ApplianceError as exc:
            raise ComponentFailure(str(exc)) from exc

    def status(self) -> str:
        net = self.config.network
        return f"{net.interface} {net.mode}" + (f" {net.address}" if net.mode == "static" else "")

    def stop(self, timeout: float) -> None:
        pass
