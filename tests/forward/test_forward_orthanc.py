"""Store-and-forward to a real Orthanc: everything arrives (checked through Orthanc's REST API);
with Orthanc down the queue holds and retries, and resumes when it returns, nothing missing and
nothing twice; hold, release and retry from `appliance queue`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydicom import dcmread

from tests.conftest import REPO
from tests.forward.conftest import wait_until
from tests.storage.dicom_files import bundled_files, make_study, storescu
from tests.storage.test_storage_scp import send_grouped


@pytest.fixture
def orthanc(shared_orthanc):
    """One Orthanc for the module's tests, running and empty at the start of each."""
    return shared_orthanc


def queue_cli(config_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "queue", "--config",
                           str(config_path), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=30)


def queue_json(config_path) -> dict:
    result = queue_cli(config_path, "--json")
    assert result.returncode == 0, result.stderr
    return {d["name"]: d for d in json.loads(result.stdout)}


def sections(orthanc, **destination) -> dict:
    return {"peers": [orthanc.peer()],
            "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0,
                              "batch_size": 8, **destination}]}


def uids(paths) -> list[str]:
    return sorted(str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths)


def test_everything_stored_arrives_in_orthanc(appliance, orthanc, tmp_path):
    _, port, config = appliance(sections(orthanc))
    files = make_study(tmp_path / "study", 20) + bundled_files()[:1] + [
        f for f in bundled_files() if f.name in ("MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                                  "rtplan.dcm", "test-SR.dcm")]
    send_grouped(port, files)
    expected = uids(files)
    wait_until(lambda: sorted(orthanc.sop_instance_uids()) == expected, 30,
               what="all instances in Orthanc")
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == len(files) and s,
                        10, what="queue shows all done")
    assert status["pending"] == 0 and status["failed"] == 0
    # Sent as stored: Orthanc holds the compressed ones in their own transfer syntax.
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        [found] = orthanc.post("/tools/find", {"Level": "Instance",
                                               "Query": {"SOPInstanceUID": ds.SOPInstanceUID}})
        meta = orthanc.get_text(f"/instances/{found}/metadata/TransferSyntax")
        assert meta == str(ds.file_meta.TransferSyntaxUID), path.name


def test_orthanc_down_queue_holds_retries_and_resumes_without_loss_or_repeat(
        appliance, orthanc, tmp_path):
    # The appliance picks its free ports while Orthanc still holds its own: Orthanc's
    # restart below needs them back.
    _, port, config = appliance(sections(orthanc))
    orthanc.stop()
    files = make_study(tmp_path / "study", 30)
    assert storescu(port, files).returncode == 0  # the modality is not affected by the outage
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["last_error"] and s, 15,
                        what="a recorded connection failure")
    assert status["pending"] == 30 and status["done"] == 0
    assert "pacs" in status["last_error"]
    shown = queue_cli(config)
    assert "pacs" in shown.stdout and "30" in shown.stdout
    assert "no association" in shown.stdout or "cannot connect" in shown.stdout
    # Several retries happen while Orthanc is away.
    wait_until(lambda: queue_json(config)["pacs"]["next_attempt"] > 0, 5)
    orthanc.start()
    wait_until(lambda: len(orthanc.sop_instance_uids()) == 30, 30, what="all 30 in Orthanc")
    wait_until(lambda: queue_json(config)["pacs"]["done"] == 30, 10)
    assert sorted(orthanc.sop_instance_uids()) == uids(files)
    assert orthanc.new_instance_changes() == 30


def test_hold_release_and_retry_from_the_command_line(appliance, orthanc, tmp_path):
    _, port, config = appliance(sections(orthanc))
    result = queue_cli(config, "hold", "pacs")
    assert result.returncode == 0 and "held" in result.stdout
    files = make_study(tmp_path / "study", 5)
    assert storescu(port, files).returncode == 0
    wait_until(lambda: queue_json(config)["pacs"]["pending"] == 5, 10)
    assert "held" in queue_cli(config).stdout
    import time
    time.sleep(2.5)  # a held destination sends nothing
    assert orthanc.sop_instance_uids() == []
    assert queue_cli(config, "release", "pacs").returncode == 0
    wait_until(lambda: len(orthanc.sop_instance_uids()) == 5, 20)

    unknown = queue_cli(config, "hold", "nosuch")
    assert unknown.returncode == 2 and "no destination named 'nosuch'" in unknown.stderr


def test_failed_items_are_sent_again_by_retry(appliance, orthanc, tmp_path):
    # max_age_hours tiny: undelivered items turn 'failed' almost at once. The appliance
    # picks its free ports while Orthanc still holds its own (it starts again below).
    _, port, config = appliance(sections(orthanc, max_age_hours=0.0003))
    orthanc.stop()
    files = make_study(tmp_path / "study", 4)
    assert storescu(port, files).returncode == 0
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["failed"] == 4 and s, 20,
                        what="items failed after the maximum age")
    assert "maximum age" in (status["last_error"] or "") or status["failed"] == 4
    orthanc.start()
    import time
    time.sleep(1.5)
    assert orthanc.sop_instance_uids() == []  # failed items are not retried by themselves
    result = queue_cli(config, "retry", "pacs")
    assert result.returncode == 0 and "4 failed" in result.stdout
    wait_until(lambda: len(orthanc.sop_instance_uids()) == 4, 20)
