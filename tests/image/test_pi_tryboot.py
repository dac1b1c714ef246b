"""Raspberry Pi A/B boot: the real RAUC backend (rauc-pi-tryboot) and post-install handler
(rauc-pi-post-install) run against a temporary directory standing in for the FAT boot
partition and a fake /proc. A small model of the Pi firmware (`firmware_boot`) then picks
config.txt or tryboot.txt by the one-shot tryboot flag and follows os_prefix, the way the
firmware does, so each test reads as: update, reboot, which slot came up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "image/overlay/usr/lib/edge-appliance"
BACKEND = SCRIPTS / "rauc-pi-tryboot"
POST_INSTALL = SCRIPTS / "rauc-pi-post-install"
CMDLINE_A = ("console=tty0 console=ttyS1,115200 root=PARTUUID=ed6e0001-02 rootfstype=ext4 ro "
             "rootwait fsck.mode=skip edge.data=LABEL=edge-data net.ifnames=0 quiet")
RASPI_FIRMWARE_CONFIG = """# Do not modify this file!
arm_64bit=1

enable_uart=1
upstream_kernel=1

kernel=vmlinuz-6.1.0-1-arm64
# For details on the initramfs directive, see
initramfs initrd.img-6.1.0-1-arm64
"""


def make_root(root: Path, kver: str, tag: str) -> Path:
    """A slot's root file system as far as booting goes: kernel, initrd, Pi device trees."""
    (root / "boot").mkdir(parents=True)
    (root / f"boot/vmlinuz-{kver}").write_text(f"kernel {tag}\n")
    (root / f"boot/initrd.img-{kver}").write_text(f"initrd {tag}\n")
    dtbs = root / f"usr/lib/linux-image-{kver}/broadcom"
    dtbs.mkdir(parents=True)
    for name in ("bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b.dtb"):
        (dtbs / name).write_text(f"dtb {tag}\n")
    return root


class Pi:
    """The FAT, /proc and /run of one simulated box, and the two slots' root file systems."""

    def __init__(self, tmp: Path):
        self.fat, self.proc, self.run_dir = tmp / "fat", tmp / "proc", tmp / "run"
        self.root_a = make_root(tmp / "rootA", "6.1.0-1-arm64", "A")
        self.root_b = make_root(tmp / "rootB", "6.1.0-2-arm64", "B")
        self.fat.mkdir()
        (self.run_dir / "systemd").mkdir(parents=True)
        self.env = {**os.environ, "EDGE_PI_FAT": str(self.fat), "EDGE_PI_PROC": str(self.proc),
                    "EDGE_PI_LOCK": str(tmp / "lock"), "EDGE_PI_REMOUNT": "0",
                    "EDGE_PI_REBOOT_PARAM": str(self.run_dir / "systemd/reboot-param"),
                    "EDGE_PI_VCIO": str(tmp / "no-vcio")}
        # what the image build does: raspi-firmware's files, then the A/B layout
        (self.fat / "config.txt").write_text(RASPI_FIRMWARE_CONFIG)
        (self.fat / "cmdline.txt").write_text(CMDLINE_A + "\n")
        (self.fat / "vmlinuz-6.1.0-1-arm64").write_text("kernel A\n")
        (self.fat / "bcm2711-rpi-4-b.dtb").write_text("dtb A\n")
        (self.fat / "start4.elf").write_text("firmware\n")
        self.backend("layout", "A", str(self.root_a))
        self.power_on()

    def backend(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BACKEND), *args], env=self.env, capture_output=True,
                                text=True, timeout=30)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def post_install(self, slot: str, root: Path, check=True) -> subprocess.CompletedProcess:
        env = {**self.env, "RAUC_TARGET_SLOTS": "1", "RAUC_SLOTS": "0 1",
               "RAUC_SLOT_BOOTNAME_0": "A" if slot == "B" else "B",
               "RAUC_SLOT_BOOTNAME_1": slot, "RAUC_SLOT_DEVICE_1": str(root),
               "RAUC_SLOT_CLASS_1": "rootfs"}
        result = subprocess.run([str(POST_INSTALL)], env=env, capture_output=True, text=True,
                                timeout=30)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def rauc_install(self, slot: str, root: Path) -> None:
        """What `rauc install` does with bootloader=custom: mark bad, write, primary, handler."""
        self.backend("set-state", slot, "bad")
        self.backend("set-primary", slot)
        self.post_install(slot, root)

    # -- the firmware and the kernel
    def firmware_boot(self, tryboot: bool) -> str:
        """Model of the Pi firmware: the one-shot flag selects tryboot.txt over config.txt;
        os_prefix applies to kernel, initramfs, cmdline.txt and DTBs, and is ignored when the
        kernel or a DTB is missing there. Returns the slot directory booted."""
        name = "tryboot.txt" if tryboot else "config.txt"
        config = (self.fat / name).read_text()        # the firmware cannot boot without it
        prefix = (re.findall(r"^os_prefix=(\S*)$", config, re.M) or [""])[-1]
        kernel = re.search(r"^kernel=(\S+)$", config, re.M).group(1)
        initrd = re.search(r"^initramfs (\S+)", config, re.M).group(1)
        if not ((self.fat / prefix / kernel).is_file() and any((self.fat / prefix).glob("*.dtb"))):
            prefix = ""
        assert (self.fat / prefix / kernel).is_file(), f"firmware: no kernel {prefix}{kernel}"
        assert (self.fat / prefix / initrd).is_file(), f"firmware: no initramfs {prefix}{initrd}"
        cmdline = (self.fat / prefix / "cmdline.txt").read_text().strip()
        self.kernel = (self.fat / prefix / kernel).read_text()
        (self.proc / "device-tree/chosen/bootloader").mkdir(parents=True, exist_ok=True)
        (self.proc / "device-tree/chosen/bootloader/tryboot").write_bytes(
            int(tryboot).to_bytes(4, "big"))
        (self.proc / "sys/kernel/random").mkdir(parents=True, exist_ok=True)
        (self.proc / "sys/kernel/random/boot_id").write_text(f"{uuid.uuid4()}\n")
        (self.proc / "cmdline").write_text(cmdline + "\n")
        (self.run_dir / "systemd/reboot-param").unlink(missing_ok=True)   # /run is a tmpfs
        return prefix

    def power_on(self) -> str:
        return self.firmware_boot(tryboot=False)

    def reboot(self, kernel_knows_tryboot=True) -> str:
        """`systemctl reboot`: systemd hands /run/systemd/reboot-param to reboot(2); a Raspberry
        Pi kernel turns "0 tryboot" into the firmware's flag, Debian's kernel ignores it."""
        param = self.run_dir / "systemd/reboot-param"
        flag = kernel_knows_tryboot and param.exists() and "tryboot" in param.read_text()
        return self.firmware_boot(tryboot=flag)

    def status(self) -> dict:
        return json.loads(self.backend("status").stdout)


@pytest.fixture
def pi(tmp_path) -> Pi:
    return Pi(tmp_path)


def snapshot(directory: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def assert_one_line_error(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("rauc-pi-tryboot: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_fresh_image_boots_slot_a_with_b_empty(pi):
    assert pi.power_on() == "slot-a/"
    assert pi.kernel == "kernel A\n"
    config = (pi.fat / "config.txt").read_text()
    for line in ("os_prefix=slot-a/", "arm_64bit=1", "upstream_kernel=1", "kernel=vmlinuz"):
        assert line in config.splitlines()
    assert sorted(p.name for p in (pi.fat / "slot-a").iterdir()) == [
        "bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b.dtb", "cmdline.txt", "initrd.img", "vmlinuz"]
    assert (pi.fat / "slot-a/cmdline.txt").read_text().strip() == CMDLINE_A
    assert (pi.fat / "start4.elf").exists()                       # firmware stays shared
    assert not list(pi.fat.glob("vmlinuz-*")) and not (pi.fat / "cmdline.txt").exists()
    assert not (pi.fat / "slot-b").exists() and not (pi.fat / "tryboot.txt").exists()
    assert pi.backend("get-primary").stdout == "A\n"
    assert pi.backend("get-current").stdout == "A\n"
    assert pi.backend("get-state", "A").stdout == "good\n"
    assert pi.backend("get-state", "B").stdout == "bad\n"         # nothing to boot there yet


def test_post_install_writes_slot_b_without_touching_slot_a(pi):
    before = snapshot(pi.fat / "slot-a")
    config = (pi.fat / "config.txt").read_text()
    result = pi.post_install("B", pi.root_b)
    assert "boot files of slot B installed" in result.stdout
    assert snapshot(pi.fat / "slot-a") == before
    assert (pi.fat / "config.txt").read_text() == config
    slot_b = pi.fat / "slot-b"
    assert (slot_b / "vmlinuz").read_text() == "kernel B\n"
    assert (slot_b / "initrd.img").read_text() == "initrd B\n"
    assert (slot_b / "bcm2711-rpi-4-b.dtb").read_text() == "dtb B\n"
    assert (slot_b / "cmdline.txt").read_text().strip() == \
        CMDLINE_A.replace("root=PARTUUID=ed6e0001-02", "root=PARTUUID=ed6e0001-03")
    assert not list(pi.fat.glob(".slot-*")) and not list(pi.fat.rglob("*.tmp"))


def test_update_tries_b_once_then_commits_it_when_marked_good(pi):
    pi.rauc_install("B", pi.root_b)
    assert "os_prefix=slot-b/" in (pi.fat / "tryboot.txt").read_text()
    assert "os_prefix=slot-a/" in (pi.fat / "config.txt").read_text()
    assert pi.backend("get-primary").stdout == "B\n"
    assert (pi.run_dir / "systemd/reboot-param").read_text().strip() == "0 tryboot"

    assert pi.reboot() == "slot-b/"                                # the trial boot
    assert pi.kernel == "kernel B\n"
    status = pi.status()
    assert status["booted"] == "B" and status["tryboot"] is True
    assert status["trial_phase"] == "running" and status["committed"] == "A"
    assert pi.backend("get-primary").stdout == "A\n"               # a plain reboot falls back

    pi.backend("set-state", "B", "good")                           # the appliance was healthy
    assert "os_prefix=slot-b/" in (pi.fat / "config.txt").read_text()
    assert not (pi.fat / "tryboot.txt").exists()
    assert pi.status()["last_result"] == "committed"
    assert pi.reboot() == "slot-b/" and pi.backend("get-primary").stdout == "B\n"
    assert pi.power_on() == "slot-b/"

    # and the next update goes back into A, now the other slot, without touching B
    before = snapshot(pi.fat / "slot-b")
    pi.rauc_install("A", make_root(pi.root_a.parent / "rootA2", "6.1.0-3-arm64", "A2"))
    assert snapshot(pi.fat / "slot-b") == before
    assert pi.reboot() == "slot-a/" and pi.kernel == "kernel A2\n"


def test_failed_trial_falls_back_to_a_on_a_plain_reboot(pi):
    pi.rauc_install("B", pi.root_b)
    assert pi.reboot() == "slot-b/"
    # the appliance never became healthy: the boot deadline (or watchdog) reboots plainly
    assert pi.reboot() == "slot-a/" and pi.kernel == "kernel A\n"
    assert pi.status()["trial_phase"] == "failed"
    pi.backend("set-state", "A", "good")                           # A is healthy again
    status = pi.status()
    assert status["last_result"] == "fell-back" and "slot B was tried" in status["reason"]
    assert status["trial"] is None and status["bad"] == ["B"]
    assert pi.backend("get-state", "B").stdout == "bad\n"
    assert pi.backend("get-primary").stdout == "A\n"
    assert not (pi.fat / "tryboot.txt").exists()
    assert pi.reboot() == "slot-a/"


def test_kernel_without_tryboot_support_stays_on_a(pi):
    pi.rauc_install("B", pi.root_b)
    assert pi.reboot(kernel_knows_tryboot=False) == "slot-a/"
    pi.backend("set-state", "A", "good")
    assert pi.status()["last_result"] == "fell-back"
    assert "os_prefix=slot-a/" in (pi.fat / "config.txt").read_text()


def test_marking_the_trial_slot_bad_cancels_the_trial(pi):
    pi.rauc_install("B", pi.root_b)
    assert pi.reboot() == "slot-b/"
    pi.backend("set-state", "B", "bad")                            # deadline unit on the trial
    assert not (pi.fat / "tryboot.txt").exists()
    assert pi.status()["last_result"] == "boot-failed"
    assert pi.reboot() == "slot-a/"
    assert pi.backend("get-state", "B").stdout == "bad\n"
    # marking bad before the reboot also cancels: the next reboot is a plain one
    pi.rauc_install("B", pi.root_b)
    pi.backend("set-state", "B", "bad")
    assert not (pi.run_dir / "systemd/reboot-param").exists()
    assert pi.reboot() == "slot-a/"


def test_the_committed_and_running_slot_is_protected(pi):
    assert_one_line_error(pi.backend("set-state", "A", "bad", check=False), "committed")
    assert_one_line_error(pi.backend("install-boot-files", "A", str(pi.root_b), check=False),
                          "never replaced")
    # on a trial boot of B, A is still the committed slot: an install into A is refused
    pi.rauc_install("B", pi.root_b)
    pi.reboot()
    assert_one_line_error(pi.backend("set-state", "A", "bad", check=False), "committed")
    assert pi.reboot() == "slot-a/"


def test_interrupted_copy_leaves_the_committed_slot_bootable(pi):
    """Kill the installer in the middle of copying the kernel (a FIFO that never ends)."""
    pi.backend("set-state", "B", "bad")
    pi.backend("set-primary", "B")
    root = pi.root_b
    kernel = root / "boot/vmlinuz-6.1.0-2-arm64"
    kernel.unlink()
    os.mkfifo(kernel)
    before = snapshot(pi.fat / "slot-a")
    proc = subprocess.Popen([str(BACKEND), "install-boot-files", "B", str(root)], env=pi.env)
    fifo = os.open(kernel, os.O_RDWR | os.O_NONBLOCK)   # never waits for a reader
    try:
        data = b"half a kernel" * 120_000                # more than one copy chunk
        partial = pi.fat / ".slot-b.tmp/vmlinuz"
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > 0):
            assert proc.poll() is None, "the installer stopped before copying"
            assert time.monotonic() < deadline, "the copy never started"
            with contextlib.suppress(BlockingIOError):
                data = data[os.write(fifo, data[:65536]):]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)                 # the power goes
        proc.wait(timeout=10)
    finally:
        os.close(fifo)
    assert (pi.fat / ".slot-b.tmp").exists() and not (pi.fat / "slot-b").exists()
    # the trial was never armed (its files are incomplete): even a clean reboot stays on A
    assert not (pi.fat / "tryboot.txt").exists() and pi.status()["trial_phase"] == "waiting"
    assert pi.reboot() == "slot-a/" and pi.kernel == "kernel A\n"
    assert pi.power_on() == "slot-a/" and snapshot(pi.fat / "slot-a") == before
    kernel.unlink()
    kernel.write_text("kernel B\n")
    pi.backend("set-state", "B", "bad")                            # the retry's first step
    status = pi.status()
    assert status["last_result"] == "install-failed" and "never completed" in status["reason"]
    pi.backend("set-primary", "B")
    pi.post_install("B", root)                                     # ... which cleans up
    assert not (pi.fat / ".slot-b.tmp").exists()
    assert pi.reboot() == "slot-b/" and pi.kernel == "kernel B\n"


def test_failed_post_install_cancels_the_trial(pi):
    broken = pi.root_b
    (broken / "boot/initrd.img-6.1.0-2-arm64").unlink()
    pi.backend("set-state", "B", "bad")
    pi.backend("set-primary", "B")
    result = pi.post_install("B", broken, check=False)
    assert result.returncode != 0
    assert "no initramfs" in result.stderr and "keeps booting the current slot" in result.stderr
    assert not (pi.fat / "tryboot.txt").exists()
    assert pi.status()["last_result"] == "install-failed"
    assert pi.reboot() == "slot-a/"


def test_tryboot_flag_is_set_through_vcmailbox_when_the_kernel_has_dev_vcio(pi, tmp_path):
    log = tmp_path / "vcmailbox.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "vcmailbox").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bindir / "vcmailbox").chmod(0o755)
    (tmp_path / "vcio").write_text("")
    pi.env.update(EDGE_PI_VCIO=str(tmp_path / "vcio"), PATH=f"{bindir}:{os.environ['PATH']}")
    pi.rauc_install("B", pi.root_b)
    assert log.read_text().splitlines() == ["0x00038064 4 0 1"]
    assert pi.status()["arm"] == "vcmailbox,reboot-param"
    pi.backend("set-primary", "A")                                 # changed one's mind
    assert log.read_text().splitlines()[-1] == "0x00038064 4 0 0"
    assert not (pi.fat / "tryboot.txt").exists()


def test_the_read_only_boot_partition_is_remounted_only_while_writing(pi, tmp_path):
    log = tmp_path / "mount.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mount").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bindir / "mount").chmod(0o755)
    pi.env.update(EDGE_PI_REMOUNT="1", PATH=f"{bindir}:{os.environ['PATH']}")
    pi.backend("get-primary")
    assert not log.exists()
    pi.backend("set-primary", "B")
    assert log.read_text().splitlines() == [f"-o remount,rw {pi.fat}", f"-o remount,ro {pi.fat}"]


@pytest.mark.parametrize("args, words", [
    ((), ["usage"]),
    (("frobnicate",), ["usage"]),
    (("set-primary",), ["usage"]),
    (("set-primary", "C"), ["unknown slot 'C'", "A or B"]),
    (("get-state", "a"), ["unknown slot"]),
    (("set-state", "B", "fine"), ["unknown state 'fine'", "good or bad"]),
    (("install-boot-files", "B", "/nonexistent"), ["not a directory"]),
])
def test_bad_arguments_get_one_clear_line(pi, args, words):
    assert_one_line_error(pi.backend(*args, check=False), *words)


def test_a_boot_partition_not_laid_out_for_ab_is_reported(pi):
    (pi.fat / "config.txt").write_text(RASPI_FIRMWARE_CONFIG)
    assert_one_line_error(pi.backend("get-primary", check=False), "os_prefix", "reflash")
    (pi.fat / "config.txt").unlink()
    assert_one_line_error(pi.backend("get-primary", check=False), "mounted")
    (pi.proc / "cmdline").write_text("root=/dev/mmcblk0p2 ro\n")
    assert_one_line_error(pi.backend("get-current", check=False), "booted slot")


def test_post_install_outside_rauc_says_so(pi):
    result = subprocess.run([str(POST_INSTALL)], env=pi.env, capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "RAUC_TARGET_SLOTS" in result.stderr
