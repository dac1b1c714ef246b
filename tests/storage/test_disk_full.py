"""The disk fills up while an image is being received (whatever `[storage] reserve_mb` says):
that C-STORE is answered 0xA700, its partial file is gone at once, no thread or descriptor is
left behind, the association goes on, and the next store succeeds once space is back. A real
`appliance run` on a real 40 MB tmpfs, with DCMTK storescu."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.forward.conftest import wait_until
from tests.storage.dicom_files import data_set_bytes, make_study, storescu


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


def steady(pid: int) -> tuple[int, int]:
    """Descriptor and thread counts once they have stopped changing (associations ended)."""
    last = None
    for _ in range(50):
        now = (fd_count(pid), thread_count(pid))
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


def responses(stderr: str) -> list[str]:
    """storescu -v: the status of each C-STORE response, in order."""
    return re.findall(r"Received Store Response \(([^)]*)\)", stderr)


@pytest.mark.parametrize("reserve_mb", [0, 1])
def test_disk_full_while_receiving_answers_A700_removes_the_partial_and_recovers(
        appliance, tmpfs, tmp_path, reserve_mb):
    disk = tmpfs(40)
    data = disk / "data"
    proc, port, _ = appliance({"device": {"data_dir": str(data)},
                               "storage": {"reserve_mb": reserve_mb}})
    small = make_study(tmp_path / "small", 5)
    big = make_study(tmp_path / "big", 1, rows=2048, columns=2048, seed=1)  # 8 MB
    incoming = data / "instances" / ".incoming"
    # Warm up (database connections and threads opened on first use), then take the baseline.
    for warm_up in (small[:1], small[1:3]):
        assert storescu(port, warm_up).returncode == 0
    fds, threads = steady(proc.pid)

    ballast = disk / "ballast"
    with open(ballast, "wb") as f:  # leave about 3 MB: more than the reserve, less than `big`
        fs = os.statvfs(disk)
        f.write(b"\0" * (fs.f_bavail * fs.f_frsize - 3 * 2**20))
    # One association (-nh: go on after a refusal): the image that does not fit, two that do.
    sent = storescu(port, [big[0], small[3], small[4]], "EDGEBOX", "STORESCU", "-v", "-nh")
    assert responses(sent.stderr) == ["Refused: OutOfResources", "Success", "Success"], \
        sent.stderr
    assert list(incoming.iterdir()) == []  # the partial is gone at once
    proc.wait_log("cannot write")  # the refusal is logged
    wait_until(lambda: (fd_count(proc.pid), thread_count(proc.pid)) == (fds, threads), 10,
               what=f"back to {fds} descriptors and {threads} threads")

    ballast.unlink()  # space is back: the same image is taken at once
    again = storescu(port, big, "EDGEBOX", "STORESCU", "-v")
    assert responses(again.stderr) == ["Success"], again.stderr
    assert list(incoming.iterdir()) == []
    stored = list((data / "instances").glob("*/*.dcm"))
    assert len(stored) == 6
    [big_stored] = [p for p in stored if p.stat().st_size > 2**20]
    assert data_set_bytes(big_stored) == data_set_bytes(big[0])
