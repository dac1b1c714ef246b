"""Fixtures for the front panel, LEDs and serial console: a configuration file, the
maintenance actions over it (reboots only recorded), and a whole appliance running in this
process on simulated hardware so tests can press its button pins and read its display."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from gpiozero import Device

from appliance.component_list import build_components
from appliance.config.loader import load_file
from appliance.core.events import EventBus
from appliance.core.health import HealthView
from appliance.core.running_record import ReloadOutcome
from appliance.core.runtime import Runtime
from appliance.core.supervisor import Supervisor
from appliance.maintenance.actions import Maintenance, SystemActions
from appliance.web.passwords import PasswordStore, password_file
from tests.conftest import free_port, write_config
from tests.hal.conftest import board, wait_until

__all__ = ["board", "wait_until"]


class RecordingRuntime(Runtime):
    """A runtime without a supervisor that counts reload requests and answers each wait
    with `outcome` (applied unless a test says otherwise)."""

    def __init__(self, bus, config_path):
        super().__init__(bus, config_path)
        self.reloads = 0
        self.outcome = ReloadOutcome(True)

    def request_reload(self) -> None:
        self.reloads += 1

    def reload_and_wait(self, timeout: float = 15.0, cancelled=lambda: False) -> ReloadOutcome:
        self.request_reload()
        return self.outcome


@pytest.fixture
def config_file(tmp_path):
    def make(sections: dict | None = None) -> Path:
        sections = {k: dict(v) if isinstance(v, dict) else v
                    for k, v in (sections or {}).items()}
        sections.setdefault("device", {}).setdefault("data_dir", str(tmp_path / "data"))
        return write_config(tmp_path / "appliance.toml", sections)
    return make


@pytest.fixture
def maintenance(config_file):
    """Factory: Maintenance over a config file; `.runtime.reloads`, `.actions.recorded`."""
    def make(sections: dict | None = None) -> Maintenance:
        path = config_file(sections)
        bus = EventBus()
        return Maintenance(load_file(path), RecordingRuntime(bus, path), HealthView(bus),
                           SystemActions(simulated=True))
    return make


@dataclass
class InProcessAppliance:
    supervisor: Supervisor
    runtime: Runtime
    bus: EventBus
    port: int
    config_path: Path

    def component(self, name: str):
        return next(s.component for s in self.supervisor.slots if s.name == name)

    @property
    def board(self):
        return self.component("panel").board

    def state(self, name: str) -> str:
        return next(s.state for s in self.supervisor.slots if s.name == name)


@pytest.fixture
def in_process_appliance(config_file):
    """Factory: the whole appliance (every component) running in a thread of this process."""
    started: list[tuple[InProcessAppliance, threading.Thread]] = []
    previous = Device.pin_factory

    def start(sections: dict | None = None, extra_components=(),
              web_password: bool = True) -> InProcessAppliance:
        """`web_password`: the box has its web password (else its panel shows the setup
        code first)."""
        sections = dict(sections or {})
        dicom = sections.setdefault("dicom", {})
        dicom.setdefault("port", free_port())
        dicom.setdefault("bind", "127.0.0.1")
        web = sections.setdefault("web", {})  # every listener on a free local port
        web.setdefault("port", free_port())
        web.setdefault("bind", "127.0.0.1")
        path = config_file(sections)
        config = load_file(path)
        if web_password:
            PasswordStore(password_file(config.device.data_dir)).set("panel test password")
        bus = EventBus()
        runtime = Runtime(bus, path)
        components = [*build_components(config, bus, runtime), *extra_components]
        supervisor = Supervisor(config, components, config_path=path, bus=bus, tick=0.05)
        runtime.supervisor = supervisor
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        app = InProcessAppliance(supervisor, runtime, bus, dicom["port"], path)
        started.append((app, thread))
        wait_until(lambda: supervisor.ready, timeout=20)
        return app

    try:
        yield start
    finally:
        for app, thread in started:
            app.supervisor.request_stop()
            thread.join(30)
            app.board.close()
        Device.pin_factory = previous


def press(board, pin: int, hold: float = 0.0) -> None:
    """Press and release the button on `pin` (held for `hold` seconds)."""
    mock = board.pin_factory.pin(pin)
    mock.drive_low()
    if hold:
        time.sleep(hold)
    mock.drive_high()
