"""Free space under the reserve: C-STORE answers 0xA700 (Out of Resources), the storage
component shows a warning to the supervisor (systemd STATUS=), the listener stays up, and
images are accepted again as soon as space returns. The data directory is a real 24 MB tmpfs
so the space really runs out."""

from __future__ import annotations

import os

import pytest

from tests.forward.conftest import wait_until
from tests.storage.dicom_files import make_study, storescu
from tests.storage.test_storage_scp import image, send


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs(24)


def test_reserve_reached_gives_A700_and_accepts_again_when_space_returns(
        appliance, small_disk, tmp_path):
    proc, port, _ = appliance({"device": {"data_dir": str(small_disk / "data")},
                               "storage": {"reserve_mb": 8}})
    images = make_study(tmp_path / "study", 3)
    assert storescu(port, images[:1]).returncode == 0

    ballast = small_disk / "ballast"
    with open(ballast, "wb") as f:  # leave about 4 MB free: under the 8 MB reserve
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        f.write(b"\0" * (free - 4 * 2**20))
    refused = storescu(port, images[1:2], "EDGEBOX", "STORESCU", "-v")
    assert refused.returncode != 0
    assert "refused: outofresources" in refused.stderr.lower(), refused.stderr  # DCMTK: 0xA7xx
    assert send(port, image()) == [0xA700]  # the exact code
    proc.notify.wait_for(lambda m: "STATUS=" in m and "under the 8 MB reserve" in m, 10)
    assert "free space" in proc.log() and "refusing images" in proc.log()

    ballast.unlink()  # space returns
    wait_until(lambda: storescu(port, images[1:2]).returncode == 0, 10,
               what="accepted again after space returned")
    assert storescu(port, images[2:]).returncode == 0
    proc.notify.wait_for(lambda m: "STATUS=" in m and "storage: 3 stored" in m, 10)
