"""The `update` component: the installer's status.json becomes `update` events on the bus,
which the LEDs (power blinks fast while installing) and the front panel show."""

from __future__ import annotations

import os
import time

from appliance.config.schema import ApplianceConfig, DeviceConfig
from appliance.core.events import EventBus
from appliance.core.health import HealthView
from appliance.maintenance.led_signals import UPDATING, signals
from appliance.update import status
from appliance.update.status import InstallStatus
from appliance.update.watcher import UpdateStatusWatcher


def watcher_for(tmp_path):
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append, "update")
    health = HealthView(bus)
    config = ApplianceConfig(device=DeviceConfig(data_dir=str(tmp_path / "data")))
    watcher = UpdateStatusWatcher(config, bus, interval=0)
    return watcher, seen, health


def test_an_install_blinks_the_power_led_and_a_failure_is_the_last_error(tmp_path):
    watcher, seen, health = watcher_for(tmp_path)
    watcher.start()
    assert watcher.status() == "idle" and seen == []

    status.write(watcher.paths.status, InstallStatus(state="failed", message="no space"))
    watcher.check()  # a result appearing after the start is news, even the first one
    assert seen[-1].data["state"] == "failed"

    status.write(watcher.paths.status, InstallStatus(state="installing", percent=40,
                                                     source="usb", message="Checking bundle"))
    watcher.check()
    assert seen[-1].data["state"] == "running" and health.updating
    assert signals(health)["power"] == UPDATING
    assert watcher.status() == "installing 40% (usb)"

    status.write(watcher.paths.status, InstallStatus(state="failed", percent=100, source="usb",
                                                     message="refused: not signed"))
    watcher.check()
    assert seen[-1].data == {"state": "failed", "info": "refused: not signed", "percent": 100,
                             "source": "usb"}
    assert not health.updating and health.last_error == "update failed: refused: not signed"


def test_an_old_result_is_not_news_but_an_install_cut_by_a_reboot_is_not_running(tmp_path):
    watcher, seen, health = watcher_for(tmp_path)
    status.write(watcher.paths.status, InstallStatus(state="succeeded", message="installed"))
    watcher.start()
    assert seen == [] and watcher.status() == "last install succeeded: installed"

    status.write(watcher.paths.status, InstallStatus(state="installing", percent=90))
    long_ago = time.time() - 10 * 365 * 86400
    os.utime(watcher.paths.status, (long_ago, long_ago))  # written before this boot
    watcher.check()
    assert not health.updating
    assert "interrupted by a restart" in watcher.status()
