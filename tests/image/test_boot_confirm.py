"""The boot confirmation script of the image (image/overlay/usr/lib/edge-appliance/boot-confirm)
run on the host against a stand-in /proc, data partition and grubenv (or U-Boot's uboot.env,
read and written with libubootenv's fw_printenv/fw_setenv), with stand-ins for
`rauc`, `systemctl` and `journalctl` that record how they were called (fast: `make test`).
The real thing under QEMU is tests/image/test_update.py (`make test-update`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "image/overlay/usr/lib/edge-appliance/boot-confirm"

EDITENV = """#!{python}
import sys
path, op, *pairs = sys.argv[1:]
lines = open(path).read().splitlines()
env = dict(l.split("=", 1) for l in lines if "=" in l and not l.startswith("#"))
if op == "set":
    env.update(p.split("=", 1) for p in pairs)
text = "".join(f"{{k}}={{v}}\\n" for k, v in env.items())
open(path, "w").write("# GRUB Environment Block\\n" + text)
"""
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
{body}
"""


class Box:
    """A stand-in box: the files boot-confirm reads, and the commands it runs."""

    def __init__(self, root: Path):
        self.root = root
        self.proc, self.data, self.bin = root / "proc", root / "data", root / "bin"
        for d in (self.proc, self.data, self.bin):
            d.mkdir()
        self.grubenv = root / "grubenv"
        self.calls = root / "calls.log"
        self.calls.touch()
        (root / "release").write_text("EDGE_APPLIANCE_VERSION=2.0\n")
        editenv = root / "grub-editenv"
        editenv.write_text(EDITENV.format(python=sys.executable))
        editenv.chmod(0o755)
        self.appliance("active", "running")
        self.command("rauc", "")
        self.command("journalctl", "echo 'appliance: cannot open the DICOM port'")

    def command(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(RECORDER.format(log=self.calls, body=body))
        path.chmod(0o755)

    def appliance(self, active: str, sub: str) -> None:
        self.command("systemctl", f'[ "$1" = show ] && printf "ActiveState={active}\\n'
                                  f'SubState={sub}\\nResult=exit-code\\nNRestarts=4\\n"; true')

    def boot(self, cmdline: str, **grubenv: str) -> None:
        (self.proc / "cmdline").write_text(cmdline + "\n")
        env = {"ORDER": "A B", "A_OK": "1", "A_TRY": "0", "B_OK": "0", "B_TRY": "0",
               "EDGE_GOOD": "A", "EDGE_MAX_TRIES": "3", **grubenv}
        self.grubenv.write_text("".join(f"{k}={v}\n" for k, v in env.items()))

    def run(self, command: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
               "EDGE_PROC": str(self.proc), "EDGE_DATA": str(self.data),
               "EDGE_GRUBENV": str(self.grubenv), "EDGE_RELEASE": str(self.root / "release"),
               "EDGE_GRUB_EDITENV": str(self.root / "grub-editenv"),
               "EDGE_FW_ENV_CONFIG": str(self.root / "fw_env.config"),
               "EDGE_FW_SETENV": "fw_setenv"}
        return subprocess.run([sys.executable, str(SCRIPT), command], env=env,
                              capture_output=True, text=True)

    def history(self) -> list[dict]:
        path = self.data / "update/history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.grubenv.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))

    def called(self) -> list[str]:
        return self.calls.read_text().splitlines()


@pytest.fixture
def box(tmp_path):
    return Box(tmp_path)


TRIAL_B = "root=PARTUUID=ed6e0001-03 ro rauc.slot=B edge.trial=1"


def test_a_trial_boot_is_recorded_then_marked_good_once_the_appliance_is_ready(box):
    box.boot(TRIAL_B, ORDER="B A", B_OK="1", B_TRY="1")
    assert box.run("boot-check").returncode == 0
    assert [(e["event"], e["slot"], e["version"]) for e in box.history()] == \
        [("trial-boot", "B", "2.0")]
    assert box.history()[0]["reason"] == "trial boot 1 of 3"
    result = box.run("mark-good")
    assert result.returncode == 0, result.stderr
    assert "rauc status mark-good booted" in box.called()
    assert box.env()["EDGE_GOOD"] == "B"
    assert box.history()[-1]["event"] == "marked-good"
    assert not (box.data / "update/trial.json").exists()


def test_a_normal_boot_is_neither_recorded_nor_marked(box):
    box.boot("root=PARTUUID=ed6e0001-02 ro rauc.slot=A")
    for command in ("boot-check", "mark-good", "deadline"):
        assert box.run(command).returncode == 0
    assert box.history() == []
    assert box.called() == []


def test_the_deadline_records_why_and_reboots_a_trial_that_is_not_ready(box):
    box.boot(TRIAL_B, ORDER="B A", B_OK="1", B_TRY="1")
    box.appliance("activating", "auto-restart")
    assert box.run("deadline").returncode == 0
    failed = box.history()[-1]
    assert failed["event"] == "boot-failed" and failed["slot"] == "B"
    assert "appliance.service activating/auto-restart" in failed["reason"]
    assert "cannot open the DICOM port" in failed["reason"]
    assert "systemctl reboot" in box.called()
    assert box.env()["EDGE_GOOD"] == "A"


def test_the_deadline_keeps_a_slot_whose_appliance_became_ready_late(box):
    box.boot(TRIAL_B, ORDER="B A", B_OK="1", B_TRY="2")
    assert box.run("deadline").returncode == 0
    assert box.history()[-1]["event"] == "marked-good"
    assert "systemctl reboot" not in box.called()


def test_the_fall_back_is_recorded_with_the_reason_and_the_failed_slot_marked_bad(box):
    box.boot(TRIAL_B, ORDER="B A", B_OK="1", B_TRY="3")
    box.run("boot-check")
    box.appliance("failed", "failed")
    box.run("deadline")
    # GRUB used up B's tries and booted A, the good slot
    box.boot("root=PARTUUID=ed6e0001-02 ro rauc.slot=A", ORDER="B A", B_OK="1", B_TRY="3")
    assert box.run("boot-check").returncode == 0
    fell = box.history()[-1]
    assert fell["event"] == "fell-back" and fell["slot"] == "A" and fell["version"] == "2.0"
    assert "slot B did not become healthy" in fell["reason"]
    assert "appliance.service failed/failed" in fell["reason"]
    calls = box.called()
    assert "rauc status mark-bad other" in calls and "rauc status mark-active booted" in calls
    assert not (box.data / "update/trial.json").exists()


def test_a_slot_that_never_reached_user_space_is_reported_too(box):
    box.boot("root=PARTUUID=ed6e0001-02 ro rauc.slot=A", ORDER="B A", B_OK="1", B_TRY="3")
    box.run("boot-check")
    fell = box.history()[-1]
    assert fell["event"] == "fell-back" and "never reached the boot check" in fell["reason"]


def uboot_box(box: Box, cmdline: str, **env: str) -> Box:
    """The Pi: no grubenv, U-Boot's uboot.env (CRC32 + variables, 0x4000 bytes as rpi_arm64)
    read and written by the real fw_printenv/fw_setenv through a fw_env.config."""
    box.boot(cmdline)
    box.grubenv.unlink()
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()) + b"\0"
    data += b"\0" * (0x4000 - 4 - len(data))
    (box.root / "uboot.env").write_bytes(zlib.crc32(data).to_bytes(4, "little") + data)
    (box.root / "fw_env.config").write_text(f"{box.root / 'uboot.env'} 0x0000 0x4000\n")
    return box


def uboot_env(box: Box) -> dict[str, str]:
    out = subprocess.run(["fw_printenv", "-c", str(box.root / "fw_env.config")],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


SLOT_A = "root=PARTUUID=ed6e0001-02 ro rauc.slot=A"
SLOT_B = "root=PARTUUID=ed6e0001-03 ro rauc.slot=B"


def test_a_u_boot_trial_is_recorded_and_the_confirmed_slot_kept_in_uboot_env(box):
    uboot_box(box, SLOT_B, BOOT_ORDER="B A", BOOT_A_LEFT="3", BOOT_B_LEFT="2")
    assert box.run("boot-check").returncode == 0
    assert box.history()[-1]["event"] == "trial-boot"
    assert box.history()[-1]["reason"] == "trial boot 1 of 3"
    assert box.called() == []
    result = box.run("mark-good")
    assert result.returncode == 0, result.stderr
    assert "rauc status mark-good booted" in box.called()
    assert uboot_env(box)["EDGE_GOOD"] == "B"
    assert box.history()[-1]["event"] == "marked-good"
    box.calls.write_text("")                  # the next boot of B is no trial any more
    assert box.run("mark-good").returncode == 0 and box.called() == []


def test_a_u_boot_boot_of_the_confirmed_slot_gets_its_attempt_back(box):
    uboot_box(box, SLOT_A, BOOT_ORDER="A B", BOOT_A_LEFT="2", BOOT_B_LEFT="3")
    assert box.run("boot-check").returncode == 0
    assert box.called() == ["rauc status mark-good booted"]
    assert box.history() == []
    uboot_box(box, SLOT_A, BOOT_ORDER="A B", BOOT_A_LEFT="3", BOOT_B_LEFT="3")
    box.calls.write_text("")
    assert box.run("boot-check").returncode == 0 and box.called() == []


def test_a_u_boot_fall_back_is_recorded_and_the_failed_slot_marked_bad(box):
    # boot.scr skipped B (first in BOOT_ORDER, no attempts left) and booted A, the good slot
    uboot_box(box, SLOT_A, BOOT_ORDER="B A", BOOT_A_LEFT="2", BOOT_B_LEFT="0", EDGE_GOOD="A")
    result = box.run("boot-check")
    assert result.returncode == 0, result.stderr
    fell = box.history()[-1]
    assert fell["event"] == "fell-back" and fell["slot"] == "A", fell
    assert "slot B did not come up in 3 trial boots" in fell["reason"]
    calls = box.called()
    assert "rauc status mark-bad other" in calls and "rauc status mark-active booted" in calls


def test_an_install_during_a_u_boot_trial_is_refused(box):
    uboot_box(box, SLOT_B, BOOT_ORDER="B A", BOOT_A_LEFT="3", BOOT_B_LEFT="1")
    result = box.run("pre-install")
    assert result.returncode == 1 and "trial of the new firmware in slot B" in result.stderr
    uboot_box(box, SLOT_A, BOOT_ORDER="A B", BOOT_A_LEFT="3", BOOT_B_LEFT="3")
    assert box.run("pre-install").returncode == 0


def test_an_install_during_a_trial_boot_is_refused(box):
    box.boot(TRIAL_B, ORDER="B A", B_OK="1", B_TRY="1")
    result = box.run("pre-install")
    assert result.returncode == 1
    assert "trial of the new firmware in slot B" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    box.boot("root=PARTUUID=ed6e0001-02 ro rauc.slot=A")
    assert box.run("pre-install").returncode == 0


def test_bad_usage_and_unknown_slot_give_one_line(box):
    assert box.run("sideways").returncode == 2
    box.boot("root=/dev/sda9 ro")
    result = box.run("boot-check")
    assert result.returncode == 1 and "cannot tell the booted slot" in result.stderr


def test_the_fw_setenv_wrapper_never_writes_over_a_damaged_uboot_env(box):
    """libubootenv would write a file with only the new variable, which U-Boot would take as its
    whole environment (no boot command): the wrapper refuses instead."""
    wrapper = REPO / "image/uboot/fw_setenv"
    uboot_box(box, SLOT_A, BOOT_ORDER="A B", BOOT_A_LEFT="3", BOOT_B_LEFT="3")
    config = str(box.root / "fw_env.config")
    env = {**os.environ, "EDGE_UBOOTENV_MOUNT": str(box.root),
           "EDGE_UBOOTENV_LOCK": str(box.root / "ubootenv.lock")}
    ok = subprocess.run([str(wrapper), "-c", config, "EDGE_GOOD", "B"], capture_output=True,
                        text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert uboot_env(box)["EDGE_GOOD"] == "B" and uboot_env(box)["BOOT_ORDER"] == "A B"
    env_file = box.root / "uboot.env"
    damaged = bytearray(env_file.read_bytes())
    damaged[10] ^= 0xFF
    env_file.write_bytes(bytes(damaged))
    refused = subprocess.run([str(wrapper), "-c", config, "BOOT_ORDER", "B A"],
                             capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "missing or damaged" in refused.stderr
    assert env_file.read_bytes() == bytes(damaged)
