"""The serial maintenance console, driven over a pty pair as a technician's terminal would:
PIN, every command, errors, and unplugging/replugging the adapter."""

from __future__ import annotations

import logging
import os
import select
import time

import pytest

from appliance.config.loader import load_file
from appliance.maintenance.console_component import SerialConsole
from tests.maintenance.conftest import wait_until

PIN = "2468"


class Terminal:
    """The technician's end of the cable: the pty master."""

    def __init__(self, link_path):
        self.master, self.slave = os.openpty()
        os.symlink(os.ttyname(self.slave), link_path)
        self.output = ""

    def read_until(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not received; got:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                self.output += os.read(self.master, 4096).decode(errors="replace")
        before, _, after = self.output.partition(text)
        self.output = after
        return before + text

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Type a line; return what came back up to the next prompt."""
        os.write(self.master, line.encode() + b"\r")
        return self.read_until("edge> ", timeout).replace("\r\n", "\n")

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def console(tmp_path, maintenance, board):
    """Factory: a console on a pty behind a stable path, logged in unless told not to."""
    link = tmp_path / "ttyUSB0"
    running: list[SerialConsole] = []
    terminals: list[Terminal] = []

    def start(login: bool = True, peers: list | None = None, idle_logout: float = 600.0):
        m = maintenance({"console": {"url": str(link), "pin": PIN, "idle_logout": idle_logout},
                         "peers": peers or []})
        terminal = Terminal(link)
        terminals.append(terminal)
        component = SerialConsole(m.config, board, m, retry=0.1)
        component.start()
        running.append(component)
        terminal.read_until("PIN: ")
        if login:
            os.write(terminal.master, PIN.encode() + b"\r")
            terminal.read_until("edge> ")
        return terminal, component, m

    yield start
    for component in running:
        component.stop(5.0)
    for terminal in terminals:
        try:
            terminal.unplug()
        except OSError:
            pass


def test_pin_is_asked_masked_and_checked(console):
    terminal, component, _ = console(login=False)
    os.write(terminal.master, b"1111\r")
    reply = terminal.read_until("PIN: ")
    assert "****" in reply and "1111" not in reply and "wrong PIN" in reply
    os.write(terminal.master, b"status\r")   # no command before the PIN
    assert "wrong PIN" in terminal.read_until("PIN: ")
    os.write(terminal.master, b"9999\r")     # third wrong PIN in a row: locked
    assert "locked for 30 s" in terminal.read_until("PIN: ")
    os.write(terminal.master, PIN.encode() + b"\r")
    assert "try again in" in terminal.read_until("PIN: ")


def test_help_status_and_errors(console):
    terminal, _, _ = console()
    help_text = terminal.command("help")
    for command in ("status", "config show", "config get KEY", "config set KEY VALUE",
                    "echo PEER", "queue", "printer", "network", "log tail", "identify",
                    "reboot", "factory-reset"):
        assert command in help_text
    assert "AE title EDGEBOX, port 11112" in terminal.command("status")
    assert "error: unknown command 'bogus' (type help)" in terminal.command("bogus")
    assert "error: usage: config show" in terminal.command("config frobnicate")
    assert "error: usage: echo PEER" in terminal.command("echo")
    assert "error: usage: log tail [N]" in terminal.command("log head")
    assert "SECONDS must be a number" in terminal.command("identify soon")


def test_config_get_set_and_show(console):
    terminal, _, m = console()
    assert 'dicom.ae_title = "EDGEBOX"' in terminal.command("config get dicom.ae_title")
    assert "unknown key 'colour'" in terminal.command("config get dicom.colour")
    reply = terminal.command("config set dicom.port 70000")
    assert "error:" in reply and "dicom.port: port must be between 1 and 65535" in reply
    assert "dicom.ae_title set and applied" in terminal.command("config set dicom.ae_title CT3EDGE")
    assert load_file(m.config_path).dicom.ae_title == "CT3EDGE"
    assert m.runtime.reloads == 1
    shown = terminal.command("config show")
    assert 'ae_title = "CT3EDGE"' in shown
    assert PIN not in shown and "**********" in shown  # the PIN is a secret


def test_echo_a_configured_peer(console, storescp):
    port = storescp("DCMTKSCP")
    terminal, _, _ = console(peers=[{"name": "pacs", "ae_title": "DCMTKSCP",
                                     "host": "127.0.0.1", "port": port}])
    assert "C-ECHO DCMTKSCP@127.0.0.1" in terminal.command("echo pacs")
    assert "success" in terminal.command("echo pacs")
    assert "error: no peer named 'ris' (known: pacs)" in terminal.command("echo ris")


def test_queue_and_printer_say_when_their_service_is_absent(console):
    terminal, _, m = console()
    assert "queue: storage is not enabled" in terminal.command("queue")
    assert "printer: print is not enabled" in terminal.command("printer")
    m.health._on_event(type("E", (), {"topic": "queue", "data": {
        "destination": "pacs", "pending": 12, "backlog": True}})())
    assert "queue: pacs: 12 pending (backlog)" in terminal.command("queue")


def test_network_settings_are_validated_and_saved(console):
    terminal, _, m = console()
    assert "mode dhcp" in terminal.command("network")
    reply = terminal.command("network static 10.1.2.3 255.255.255.0 10.9.9.1")
    assert "error:" in reply and "gateway 10.9.9.1 is not in 10.1.2.0/24" in reply
    assert load_file(m.config_path).network.mode == "dhcp"
    assert "static address set" in terminal.command("network static 10.1.2.3 255.255.255.0 "
                                                    "10.1.2.1")
    net = load_file(m.config_path).network
    assert (net.mode, net.address, net.netmask, net.gateway) == \
        ("static", "10.1.2.3", "255.255.255.0", "10.1.2.1")
    assert "DHCP set" in terminal.command("network dhcp")
    assert "error: usage: network" in terminal.command("network static 10.1.2.3")


def test_log_tail_identify_reboot_and_factory_reset(console, caplog):
    caplog.set_level(logging.INFO)  # as `appliance run` logs
    terminal, _, m = console()
    events = []
    m.runtime.bus.subscribe(lambda e: events.append(e.data), "identify")
    assert "LEDs blinking for 5 s" in terminal.command("identify 5")
    assert events == [{"seconds": 5.0}]
    assert "identify for 5s" in terminal.command("log tail 5")
    assert "type 'reboot confirm'" in terminal.command("reboot")
    assert m.actions.recorded == []
    assert "reboot recorded (simulated hardware)" in terminal.command("reboot confirm")
    assert m.actions.recorded == ["reboot"]
    terminal.command("config set dicom.ae_title CHANGED")
    assert "type 'factory-reset confirm'" in terminal.command("factory-reset")
    assert load_file(m.config_path).dicom.ae_title == "CHANGED"
    reply = terminal.command("factory-reset confirm")
    assert "configuration reset to factory defaults" in reply
    assert load_file(m.config_path).dicom.ae_title == "EDGEBOX"
    assert m.actions.recorded == ["reboot", "reboot"]
    assert "CHANGED" in m.config_path.with_name("appliance.toml.before-factory-reset").read_text()


def test_unplug_and_replug_gives_a_fresh_locked_session(console, tmp_path):
    terminal, component, _ = console()
    assert "EDGEBOX" in terminal.command("status")
    terminal.unplug()
    (tmp_path / "ttyUSB0").unlink()
    wait_until(lambda: not component.connected)
    replugged = Terminal(tmp_path / "ttyUSB0")
    try:
        replugged.read_until("PIN: ")
        os.write(replugged.master, PIN.encode() + b"\r")
        replugged.read_until("edge> ")
        assert "EDGEBOX" in replugged.command("status")
        component.check()  # still healthy
    finally:
        component.stop(5.0)
        replugged.unplug()


def test_logout_locks_again(console):
    terminal, _, _ = console()
    os.write(terminal.master, b"logout\r")
    assert "logged out" in terminal.read_until("PIN: ")
    os.write(terminal.master, b"status\r")
    assert "wrong PIN" in terminal.read_until("PIN: ")



def test_an_idle_session_is_locked_again(console):
    terminal, _, _ = console(idle_logout=0.5)
    assert "logged out after 0.5 s idle" in terminal.read_until("PIN: ", timeout=5)
    os.write(terminal.master, b"status\r")
    assert "wrong PIN" in terminal.read_until("PIN: ")
