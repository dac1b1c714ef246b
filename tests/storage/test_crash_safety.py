"""Crash safety: `appliance run` is killed with SIGKILL at random moments while DCMTK storescu
is sending, many times. After each restart every instance that got Success is present and
intact, and in the end every one of them reaches the destination (DCMTK storescp)."""

from __future__ import annotations

import random
import re
import subprocess
import time

from pydicom import dcmread

from tests.conftest import DCMTK_ENV
from tests.forward.conftest import wait_until
from tests.storage.dicom_files import make_study

ROUNDS = 15
PER_ROUND = 25


def acknowledged(stderr: str) -> list[str]:
    """Files storescu -v saw answered with Success, in order."""
    done, current = [], None
    for line in stderr.splitlines():
        sending = re.search(r"Sending file: (\S+)", line)
        if sending:
            current = sending.group(1)
        elif "Received Store Response (Success)" in line and current:
            done.append(current)
            current = None
    return done


def test_sigkill_during_transfers_loses_nothing_acknowledged(appliance, storescp, tmp_path):
    rng = random.Random(20240601)
    peer_port = storescp("CRASHPACS")
    peer_dir = tmp_path / "storescp0"
    sections = {"peers": [{"name": "pacs", "ae_title": "CRASHPACS", "host": "127.0.0.1",
                           "port": peer_port}],
                "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0}]}
    acked: dict[str, str] = {}  # SOP Instance UID -> original file
    for round_number in range(ROUNDS):
        files = make_study(tmp_path / f"round{round_number}", PER_ROUND, rows=256, columns=256,
                           seed=round_number)
        proc, port, _ = appliance(sections)
        sender = subprocess.Popen(
            ["storescu", "-v", "-aet", "MODALITY", "-aec", "EDGEBOX", "127.0.0.1", str(port),
             *map(str, files)], env=DCMTK_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.proc.kill()  # SIGKILL: no cleanup of any kind
        proc.proc.wait(10)
        _, stderr = sender.communicate(timeout=30)
        for path in acknowledged(stderr):
            acked[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path

        # Restart on the same data directory: every acknowledged instance is there, intact.
        proc, port, _ = appliance(sections)
        check_all_present(tmp_path / "data", acked)
        if round_number < ROUNDS - 1:
            proc.proc.kill()
            proc.proc.wait(10)
    assert len(acked) >= ROUNDS  # the kills did land mid-transfer, not only before or after
    # ... and every one of them is eventually forwarded.
    wait_until(lambda: all(list(peer_dir.glob(f"*{uid}*")) for uid in acked), 60,
               what="every acknowledged instance forwarded")
    for uid, original in acked.items():
        [received] = peer_dir.glob(f"*{uid}*")
        assert dcmread(received).PixelData == dcmread(original).PixelData


def check_all_present(data_dir, acked: dict[str, str]) -> None:
    import sqlite3
    conn = sqlite3.connect(data_dir / "db" / "appliance.sqlite3")
    rows = dict(conn.execute("SELECT sop_instance_uid, path FROM instances").fetchall())
    conn.close()
    for uid, original in acked.items():
        assert uid in rows, f"acknowledged instance {uid} missing after SIGKILL"
        stored = dcmread(data_dir / "instances" / rows[uid])
        sent = dcmread(original)
        assert stored.SOPInstanceUID == uid
        assert stored.PixelData == sent.PixelData, f"{uid} damaged"
        assert stored == sent  # every data element equal
