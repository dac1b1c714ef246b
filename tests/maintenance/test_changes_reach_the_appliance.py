"""A change made from the front panel, the serial console or `appliance config set` reaches
the running appliance (checked with DCMTK's echoscu: the new called AE title is accepted, the
old one refused), or the message says plainly that it is not applied yet and why."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from appliance.config.loader import load_file
from appliance.core.running_record import record_path
from tests.conftest import REPO, echoscu
from tests.maintenance.conftest import wait_until
from tests.maintenance.test_console import PIN, Terminal

# o: menu, o: AE title editor, 6 x o: to the last character, w: X -> Y, O (long OK): save.
EDGEBOX_TO_EDGEBOY = "oo" + "o" * 6 + "w" + "O" + "q"


def config_set(config, key: str, value: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "config", "set", "--config",
                           str(config), key, value],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def run_panel(config, keys: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "panel", "--config", str(config)],
                          input=keys, capture_output=True, text=True, timeout=60, cwd=REPO)


def answers_as(port: int, new: str, old: str) -> None:
    """The running appliance answers a C-ECHO to `new` at once and refuses `old`."""
    assert echoscu(port, called=new).returncode == 0
    assert echoscu(port, called=old).returncode != 0


# -- appliance config set -------------------------------------------------------------------

def test_config_set_reaches_the_running_appliance(appliance):
    proc, port, config = appliance()
    assert echoscu(port, called="EDGEBOX").returncode == 0
    result = config_set(config, "dicom.ae_title", "CLISET")
    assert result.returncode == 0, result.stderr
    assert "dicom.ae_title set and applied by the running appliance" in result.stdout
    answers_as(port, "CLISET", "EDGEBOX")  # no waiting: "applied" means applied
    assert "configuration reloaded" in proc.log()


def test_config_set_without_a_running_appliance_says_not_applied(tmp_path, config_file):
    path = config_file()
    result = config_set(path, "dicom.ae_title", "OFFLINE")
    assert result.returncode == 0, result.stderr
    assert "dicom.ae_title saved; not applied yet: no running appliance found" in result.stdout
    assert load_file(path).dicom.ae_title == "OFFLINE"


def test_a_stale_record_of_a_crashed_appliance_is_recognised(tmp_path, config_file):
    path = config_file()
    record = record_path(load_file(path).device.data_dir)
    record.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    record.write_text(json.dumps({"pid": dead.pid, "start_time": "1", "config": str(path),
                                  "generation": 3, "applied": True, "digest": ""}))
    result = config_set(path, "dicom.ae_title", "STALE")
    assert result.returncode == 0, result.stderr
    assert "not applied yet: no running appliance found (stale" in result.stdout


def test_config_set_says_when_the_running_appliance_did_not_apply_it(appliance):
    proc, port, config = appliance()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = config_set(config, "dicom.port", str(taken))
    assert result.returncode == 1
    assert "dicom.port saved; not applied yet: dicom failed:" in result.stderr


# -- appliance panel in a terminal ----------------------------------------------------------

def test_terminal_panel_change_reaches_the_running_appliance(appliance):
    proc, port, config = appliance()
    result = run_panel(config, EDGEBOX_TO_EDGEBOY)
    assert result.returncode == 0, result.stderr
    assert "|AE title saved  |\n|applied         |" in result.stdout
    answers_as(port, "EDGEBOY", "EDGEBOX")


def test_terminal_panel_without_a_running_appliance_says_not_applied(config_file):
    path = config_file()
    result = run_panel(path, EDGEBOX_TO_EDGEBOY)
    assert result.returncode == 0, result.stderr
    assert "|AE title saved  |\n|NOT applied yet:|" in result.stdout
    assert "|applied         |" not in result.stdout
    assert load_file(path).dicom.ae_title == "EDGEBOY"


# -- the front panel of a running appliance -------------------------------------------------

def set_port_in_editor(menu, target: int) -> None:
    """On the port editor of a running panel: turn each digit to `target`'s, then save."""
    for index, digit in enumerate(f"{target:05d}"):
        current = int(menu.screen.chars[menu.screen.pos])
        for _ in range((int(digit) - current) % 10):
            menu.press("up")
        menu.press("ok")
        assert index == 4 or menu.screen.pos == index + 1


def test_front_panel_says_not_applied_when_the_appliance_cannot_apply(in_process_appliance):
    app = in_process_appliance()
    menu = app.component("panel").menu
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        menu.press("ok")
        menu.press("down")
        menu.press("ok")                   # the port editor
        set_port_in_editor(menu, taken)
        wait_until(lambda: "NOT applied" in " ".join(menu.render()[0]), timeout=20)
        assert menu.render()[0][0].rstrip() == f"Port {taken} saved"
        assert "dicom failed" in " ".join(menu.wrap(menu.screen.text))


# -- the serial console of a running appliance ----------------------------------------------

def console_appliance(appliance, tmp_path):
    link = tmp_path / "ttyUSB0"
    terminal = Terminal(link)
    proc, port, config = appliance({"console": {"url": str(link), "pin": PIN}})
    terminal.read_until("PIN: ", timeout=20)
    os.write(terminal.master, PIN.encode() + b"\r")
    terminal.read_until("edge> ")
    return terminal, port


def test_console_change_reaches_the_running_appliance(appliance, tmp_path):
    terminal, port = console_appliance(appliance, tmp_path)
    try:
        answer = terminal.command("config set dicom.ae_title CONSOLE1", timeout=30)
        assert "dicom.ae_title set and applied" in answer
        answers_as(port, "CONSOLE1", "EDGEBOX")
    finally:
        terminal.unplug()


def test_console_says_not_applied_when_the_appliance_cannot_apply(appliance, tmp_path):
    terminal, port = console_appliance(appliance, tmp_path)
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            answer = terminal.command(f"config set dicom.port {taken}", timeout=30)
        assert "dicom.port saved; not applied yet: dicom failed:" in answer
        assert "set and applied" not in answer
    finally:
        terminal.unplug()
