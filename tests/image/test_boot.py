"""Boot test of the appliance OS image under QEMU (TCG): slow, so it runs only through
`make test-image`, which builds the image and sets EDGE_TEST_IMAGE to the .img file.

One guest goes through a technician's and a power cut's life, in order:
  1. first power-on with appliance.toml and authorized_keys put on the boot partition:
     DICOM-ready time printed, C-ECHO answered on the forwarded port, /api/health answered
     on the forwarded web port (when the build has the web component);
  2. the image's Python imports the native DICOM engine (built for the image's architecture,
     DCMTK's libraries in the root); / is read-only, /data is the grown data partition,
     first-boot setup happened;
  3. a configuration change made over the forwarded SSH port survives a reboot;
  4. power cut (QEMU killed during writes), power on: data partition and appliance healthy;
  5. clean power-off, then the data file system checks clean from the host.
The tests share one guest and must run in file order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.image.qemu_box import Box, extract_partition, fat_put, partitions

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not os.environ.get("EDGE_TEST_IMAGE"),
                       reason="boot test: run `make test-image` (sets EDGE_TEST_IMAGE)"),
]

READY_TIMEOUT = float(os.environ.get("EDGE_TEST_READY_TIMEOUT", "420"))
NEW_AET = "NEWAE"
results: dict[str, float] = {}


def report(line: str) -> None:
    print(f"\n[image] {line}", flush=True)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    for tool in ("qemu-system-aarch64", "qemu-system-x86_64", "echoscu", "ssh", "ssh-keygen",
                 "mcopy", "sfdisk", "e2fsck"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make image-deps`")
    source = Path(os.environ["EDGE_TEST_IMAGE"])
    if not source.is_file():
        pytest.fail(f"EDGE_TEST_IMAGE={source} does not exist: run `make image`")
    arch = "amd64" if "amd64" in source.name else "arm64"
    work = tmp_path_factory.mktemp("box")
    image = work / source.name
    subprocess.run(["cp", "--sparse=always", str(source), str(image)], check=True)
    # a card bigger than the image: first boot must grow the data partition into it
    with open(image, "r+b") as f:
        f.truncate(image.stat().st_size + 512 * 1024 * 1024)
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    # what a technician puts on the boot partition (docs/flashing.md)
    fat_put(image, "authorized_keys", (work / "id_ed25519.pub").read_text())
    fat_put(image, "appliance.toml",
            '[device]\nname = "qemu-test-box"\n\n[dicom]\nae_title = "EDGEBOX"\n\n'
            '[hal]\nbackend = "sim"\n')
    b = Box(image, arch, key, work)
    report(f"booting {image} ({arch}); serial logs in {work}")
    yield b
    b.stop()
    if results:
        report("summary: " + ", ".join(f"{k} {v:.1f} s" for k, v in results.items()))


def test_first_boot_reaches_dicom_ready(box):
    box.power_on()
    seconds = box.wait_dicom_ready("EDGEBOX", READY_TIMEOUT)
    results["first boot, power-on to DICOM-ready"] = seconds
    report(f"first boot: power-on -> DICOM-ready (C-ECHO answered) in {seconds:.1f} s")
    box.wait_ssh(120)
    report("guest's own view: " + box.ssh("systemd-analyze time | head -n1").strip())
    ready_us = box.ssh("systemctl show -P ActiveEnterTimestampMonotonic appliance.service")
    report(f"guest's own view: appliance READY=1 at {int(ready_us) / 1e6:.1f} s after kernel start")


def test_web_health_over_the_forwarded_port(box):
    has_web = box.ssh("/opt/appliance/bin/python -c 'import appliance.web.api' && echo yes",
                      check=False, timeout=120).strip().endswith("yes")
    if not has_web:
        pytest.skip("this build of the appliance has no web component (/api/health)")
    status, body = box.http_get_json("/api/health")
    assert status == 200 and body["healthy"] is True, (status, body)


def test_native_dicom_engine_imports(box):
    from appliance.dicom.engine import IMPLEMENTATION_CLASS_UID
    uid = box.ssh("/opt/appliance/bin/python -c 'import appliance.dicom.engine._engine as e; "
                  "print(e.IMPLEMENTATION_CLASS_UID)'", timeout=120).strip()
    assert uid == IMPLEMENTATION_CLASS_UID


def test_root_is_read_only(box):
    options = box.ssh("findmnt -n -o OPTIONS /").strip().split(",")
    assert "ro" in options, f"/ is mounted {options}"
    result = box.ssh("touch /usr/.edge-write-test /etc/.edge-write-test 2>&1; echo rc=$?",
                     check=False)
    assert "Read-only file system" in result and "rc=0" not in result, result
    assert box.ssh("findmnt -n -o OPTIONS /data").startswith("rw")
    # the appliance's sandbox sees / read-only too, and /data writable
    assert box.ssh("systemctl show -p ProtectSystem appliance").strip() == "ProtectSystem=strict"


def test_first_boot_set_up_the_data_partition(box):
    config = box.ssh("cat /data/config/appliance.toml")
    assert "qemu-test-box" in config, "appliance.toml from the boot partition was not used"
    assert 'data_dir = "/data"' in config
    for path in ("/data/identity/instance-id", "/data/web/tls/cert.pem", "/data/web/tls/key.pem",
                 "/data/etc/machine-id", "/data/etc/ssh/ssh_host_ed25519_key"):
        box.ssh(f"test -s {path}")
    assert box.ssh("readlink /etc/machine-id").strip() == "/data/etc/machine-id"
    assert box.ssh("cat /etc/machine-id") == box.ssh("cat /data/etc/machine-id")
    size_mb = int(box.ssh("df -m --output=size /data | tail -n1"))
    image_data_mb = partitions(box.image)[3]["size"] // 2048
    assert image_data_mb > 600, f"data partition not grown: {image_data_mb} MiB in the table"
    assert size_mb > 600, f"data file system not grown: {size_mb} MiB"
    assert box.ssh("stat -c %U /data/config/appliance.toml").strip() == "appliance"
    assert box.ssh("id -nG appliance").split() >= ["appliance"]
    groups = set(box.ssh("id -nG appliance").split())
    assert {"gpio", "dialout", "lp"} <= groups, groups
    state = box.ssh("systemctl is-system-running --wait", check=False, timeout=180).strip()
    failed = box.ssh("systemctl --failed --no-legend", check=False)
    assert state == "running", f"system is {state}; failed units:\n{failed}"


def test_config_change_survives_reboot(box):
    box.ssh(f"runuser -u appliance -- /opt/appliance/bin/appliance config set dicom.ae_title "
            f"{NEW_AET} --config /data/config/appliance.toml")
    boot_id = box.ssh("cat /proc/sys/kernel/random/boot_id").strip()
    box.command_and_disconnect("systemctl reboot")
    box.started_at = time.monotonic()
    box.wait_ssh(READY_TIMEOUT, not_boot_id=boot_id)
    seconds = box.wait_dicom_ready(NEW_AET, READY_TIMEOUT)
    results["reboot to DICOM-ready"] = seconds
    report(f"reboot -> DICOM-ready under the new AE title in {seconds:.1f} s")
    assert f'ae_title = "{NEW_AET}"' in box.ssh("cat /data/config/appliance.toml")
    # strict_called_aet (the default): the old title is now refused
    assert box.echo("EDGEBOX").returncode != 0


def test_power_cut_leaves_data_and_appliance_healthy(box):
    box.ssh("runuser -u appliance -- /opt/appliance/bin/appliance config set device.name "
            "after-power-cut --config /data/config/appliance.toml")
    # writes in flight when the power goes
    box.ssh("nohup sh -c 'i=0; while [ $i -lt 400 ]; do head -c 65536 /dev/urandom "
            "> /data/spool/cut-$i; i=$((i+1)); done' >/dev/null 2>&1 &")
    box.pull_plug()
    report("QEMU killed (power cut) during writes to /data")
    box.power_on()
    seconds = box.wait_dicom_ready(NEW_AET, READY_TIMEOUT)
    results["power-on after power cut to DICOM-ready"] = seconds
    report(f"after the power cut: power-on -> DICOM-ready in {seconds:.1f} s")
    box.wait_ssh(120)
    report(f"after the power cut: DICOM-ready -> systemd active in {box.wait_active():.1f} s")
    assert box.ssh("findmnt -n -o OPTIONS /data").startswith("rw")
    assert 'name = "after-power-cut"' in box.ssh("cat /data/config/appliance.toml")
    box.ssh("/opt/appliance/bin/appliance config check /data/config/appliance.toml")
    state = box.ssh("systemctl is-system-running --wait", check=False, timeout=180).strip()
    failed = box.ssh("systemctl --failed --no-legend", check=False)
    assert state == "running", f"system is {state}; failed units:\n{failed}"
    boots = box.ssh("journalctl --list-boots --no-pager | wc -l").strip()
    assert int(boots) >= 3, f"persistent journal has {boots} boots, expected 3"


def test_clean_power_off_leaves_a_clean_data_file_system(box, tmp_path):
    box.command_and_disconnect("systemctl poweroff")
    assert box.wait_off(180), f"the guest did not power off:\n{box.serial_tail()}"
    data = tmp_path / "data.ext4"
    extract_partition(box.image, 4, data)
    result = subprocess.run(["e2fsck", "-fn", str(data)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
