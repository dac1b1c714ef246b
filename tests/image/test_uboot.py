"""The Raspberry Pi's A/B slot choice (image/uboot/boot.cmd), run by a real U-Boot: Debian's
qemu_arm64 build under qemu-system-aarch64 with the QEMU prelude, against a small disk with the
FAT environment and two slots whose stand-in kernels say which slot booted (tests/image/
uboot_disk.py). Between power-ons the test changes uboot.env with fw_setenv and reads it back
with fw_printenv, as RAUC (bootloader=uboot) does on the box. Run by `make test-uboot`, which
installs the tools and sets EDGE_TEST_UBOOT; about 3 s per power-on.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.image.uboot_disk import Disk, missing_tools

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not os.environ.get("EDGE_TEST_UBOOT"),
                       reason="U-Boot test: run `make test-uboot` (sets EDGE_TEST_UBOOT)"),
]


@pytest.fixture
def disk(tmp_path) -> Disk:
    if missing := missing_tools():
        pytest.fail(f"missing: {', '.join(missing)} (make test-uboot installs them)")
    return Disk(tmp_path)


def booted(out: str) -> str:
    """The slot whose kernel ran (the stand-in kernel's line), after the script's own line."""
    kernels = re.findall(r"EDGE-STAND-IN-KERNEL slot=(\w)", out)
    assert len(kernels) == 1, f"expected one kernel to start:\n{out}"
    chosen = re.search(r"edge: booting slot (\w) from partition (\d): (.*)", out)
    assert chosen and chosen.group(1) == kernels[0], out
    return kernels[0]


def counters(disk: Disk) -> tuple[str, str, str]:
    env = disk.printenv()
    return env.get("BOOT_ORDER"), env.get("BOOT_A_LEFT"), env.get("BOOT_B_LEFT")


def test_first_boot_chooses_a_and_spends_one_attempt_before_the_kernel(disk):
    assert "uboot.env" not in disk.fat_files()
    out = disk.boot()
    assert "edge: no uboot.env: default environment" in out
    assert booted(out) == "A"
    # saved before the kernel started: the save line comes before "Starting kernel"
    assert out.index("edge: environment saved") < out.index("Starting kernel")
    assert counters(disk) == ("A B", "2", "3")
    line = re.search(r"edge: booting slot A from partition 2: (.*)", out).group(1).split()
    assert f"root=PARTUUID={disk.partuuid(2)}" in line and "rauc.slot=A" in line
    assert "console=ttyAMA0,115200" in line and "ro" in line and "panic=10" in line


def test_slot_b_boots_once_rauc_marks_it_active(disk):
    disk.boot()
    # what `rauc status mark-active other` writes with bootloader=uboot
    disk.setenv(BOOT_ORDER="B A", BOOT_B_LEFT="3")
    out = disk.boot()
    assert booted(out) == "B"
    assert "2 boot attempt(s) left" in out
    line = re.search(r"edge: booting slot B from partition 3: (.*)", out).group(1).split()
    assert f"root=PARTUUID={disk.partuuid(3)}" in line and "rauc.slot=B" in line
    assert counters(disk) == ("B A", "2", "2")
    # marked good (rauc status mark-good: BOOT_B_LEFT back to 3): B stays and this boot
    # spends one of the restored attempts (unmarked, it would be down to 1)
    disk.setenv(BOOT_B_LEFT="3")
    assert booted(disk.boot()) == "B"
    assert counters(disk) == ("B A", "2", "2")


def test_falls_back_to_a_when_b_runs_out_of_attempts(disk):
    disk.boot()
    disk.setenv(BOOT_ORDER="B A", BOOT_B_LEFT="2")
    # two trial boots of B that never get marked good (a kernel that hangs or panics) ...
    assert booted(disk.boot()) == "B"
    assert booted(disk.boot()) == "B"
    assert counters(disk) == ("B A", "2", "0")
    # ... then A, without anyone touching the box
    out = disk.boot()
    assert "edge: slot B has no boot attempts left: skipped" in out
    assert booted(out) == "A"
    assert counters(disk) == ("B A", "1", "0")


def test_all_slots_exhausted_resets_counters_and_restarts_into_the_first_slot(disk):
    disk.boot()
    disk.setenv(BOOT_ORDER="B A", BOOT_A_LEFT="0", BOOT_B_LEFT="0")
    out = disk.boot()                         # QEMU runs with -no-reboot: the reset ends it
    assert "edge: no slot has boot attempts left: counters reset to 3, resetting" in out
    assert "EDGE-STAND-IN-KERNEL" not in out and "resetting ..." in out
    assert counters(disk) == ("B A", "3", "3")
    assert booted(disk.boot()) == "B"         # the power-on after the reset
    assert counters(disk) == ("B A", "3", "2")


def test_boot_order_without_a_slot_name_is_set_back_to_a_b(disk):
    disk.boot()
    disk.setenv(BOOT_ORDER="C")
    out = disk.boot()
    assert 'BOOT_ORDER "C" names no slot: set back to "A B"' in out
    assert counters(disk) == ("A B", "3", "3")
    assert booted(disk.boot()) == "A"


def test_damaged_environment_boots_a_with_defaults_and_is_rewritten(disk):
    """A power cut while uboot.env is written leaves a bad CRC: U-Boot ignores the file, the
    script's defaults choose A, and the save on that boot writes a good file again."""
    disk.boot()
    disk.setenv(BOOT_ORDER="B A", BOOT_B_LEFT="3")
    disk.damage_env(200)
    out = disk.boot()
    assert "uboot.env is damaged (bad CRC): default environment" in out
    assert booted(out) == "A"
    assert counters(disk) == ("A B", "2", "3")


def test_slot_without_a_kernel_spends_its_attempt_and_resets(tmp_path):
    """A slot whose root holds no kernel (an install cut short) is tried, fails to load, and
    costs an attempt like a kernel that hangs, so the other slot takes over."""
    if missing := missing_tools():
        pytest.fail(f"missing: {', '.join(missing)} (make test-uboot installs them)")
    disk = Disk(tmp_path, slot_b_kernel=False)
    disk.boot()
    disk.setenv(BOOT_ORDER="B A", BOOT_B_LEFT="1")
    out = disk.boot()
    assert "edge: slot B has no /boot/vmlinuz" in out
    # the script stops before booti: nothing is started from a half-loaded slot
    assert "edge: booting slot B" not in out and "Starting kernel" not in out
    assert "edge: cannot boot slot B; resetting in 3 s" in out
    assert "EDGE-STAND-IN-KERNEL" not in out
    assert counters(disk) == ("B A", "2", "0")
    assert booted(disk.boot()) == "A"
