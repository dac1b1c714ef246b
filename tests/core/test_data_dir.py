"""The data directory monitor publishes `disk` from the real free space of its directory: at
start and when the state changes, with the thresholds of [storage]."""

from __future__ import annotations

import os

import pytest

from appliance.config.loader import load_file
from appliance.core.data_dir import DataDirectoryMonitor
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.system.disk_usage import used_percent
from tests.conftest import write_config


@pytest.fixture
def monitor(tmp_path):
    """Factory: a monitor of tmp_path/data with [storage] `settings`, and the disk events."""
    def make(**settings):
        path = write_config(tmp_path / "appliance.toml", {
            "device": {"data_dir": str(tmp_path / "data")}, "storage": settings})
        bus = EventBus()
        seen = []
        bus.subscribe(lambda e: seen.append(e.data), Topic.DISK)
        found = DataDirectoryMonitor(load_file(path), bus, interval=0.0)
        return found, seen, path
    return make


def test_an_ok_disk_is_published_once_at_start(monitor):
    found, seen, _ = monitor(reserve_mb=0, high_water_percent=100)
    found.start()
    found.check()
    found.check()
    fs = os.statvfs(found.path)
    assert [e["state"] for e in seen] == ["ok"]
    assert seen[0]["reserve_bytes"] == 0 and seen[0]["high_water_percent"] == 100
    assert abs(seen[0]["free_bytes"] - fs.f_bavail * fs.f_frsize) < 2**30
    assert abs(seen[0]["used_percent"] - used_percent(found.path)) < 1


def test_above_the_high_water_mark_is_high_and_under_the_reserve_is_full(monitor, tmp_path):
    if used_percent(tmp_path) <= 1:
        pytest.skip("the test file system is almost empty: 1% is the lowest mark")
    found, seen, path = monitor(high_water_percent=1)
    found.start()
    assert [e["state"] for e in seen] == ["high"]
    free_mb = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize // 2**20
    write_config(path, {"device": {"data_dir": str(tmp_path / "data")},
                        "storage": {"reserve_mb": free_mb + 1024}})
    found.reconfigure(load_file(path))
    found.check()
    assert [e["state"] for e in seen] == ["high", "full"]
    assert seen[-1]["free_bytes"] < seen[-1]["reserve_bytes"]
    write_config(path, {"device": {"data_dir": str(tmp_path / "data")}})
    found.reconfigure(load_file(path))
    found.check()
    assert [e["state"] for e in seen] == ["high", "full", "ok"]
