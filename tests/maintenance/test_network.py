"""Network settings become a systemd-networkd .network file on the data partition; on the board
they are applied with networkctl, in sim only recorded."""

from __future__ import annotations

import subprocess

import pytest

from appliance.config.loader import load_file
from appliance.core.errors import ComponentFailure
from appliance.maintenance.actions import SystemActions
from appliance.maintenance.config import NetworkConfig
from appliance.maintenance.networkd import NetworkSettings, network_file, render_network_file
from tests.maintenance.conftest import wait_until


def test_dhcp_file():
    text = render_network_file(NetworkConfig())
    assert "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n" in text


def test_static_file():
    text = render_network_file(NetworkConfig(
        interface="end0", mode="static", address="10.1.2.3", netmask="255.255.254.0",
        gateway="10.1.2.1", dns=["10.1.2.53", "10.1.2.54"]))
    assert text.endswith("[Match]\nName=end0\n\n[Network]\nAddress=10.1.2.3/23\n"
                         "Gateway=10.1.2.1\nDNS=10.1.2.53\nDNS=10.1.2.54\n")


def test_sim_writes_the_file_and_only_records_the_apply(config_file):
    config = load_file(config_file({"network": {"mode": "static", "address": "10.0.0.5",
                                                "netmask": "255.255.255.0"}}))
    actions = SystemActions(simulated=True)
    component = NetworkSettings(config, actions)
    component.start()
    path = network_file(config)
    assert path.name == "10-appliance.network" and path.parent.name == "network"
    assert "Address=10.0.0.5/24" in path.read_text()
    assert actions.recorded == ["network reload", "network apply eth0"]
    component.start()  # unchanged: not applied again
    assert len(actions.recorded) == 2


def test_pi_applies_with_networkctl(config_file):
    calls = []
    actions = SystemActions(simulated=False, run=lambda cmd, **kw: calls.append(cmd))
    NetworkSettings(load_file(config_file()), actions).start()
    assert calls == [["networkctl", "reload"], ["networkctl", "reconfigure", "eth0"]]


def test_a_failing_apply_fails_the_component_with_the_reason(config_file):
    def run(cmd, **kw):
        raise subprocess.CalledProcessError(1, cmd)
    component = NetworkSettings(load_file(config_file()), SystemActions(False, run=run))
    with pytest.raises(ComponentFailure, match="network reload failed"):
        component.start()


def test_a_change_from_the_console_path_reaches_the_file(in_process_appliance):
    from appliance.maintenance.actions import Maintenance
    app = in_process_appliance()
    maintenance: Maintenance = app.component("panel").maintenance
    path = network_file(maintenance.config)
    assert "DHCP=ipv4" in path.read_text()
    maintenance.set_static_network("10.20.30.40", "255.255.0.0", "10.20.0.1")
    wait_until(lambda: "Address=10.20.30.40/16" in path.read_text())
    assert "Gateway=10.20.0.1" in path.read_text()
    assert "network apply eth0" in maintenance.actions.recorded
