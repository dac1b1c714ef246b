"""The boot loader's environment of a booted appliance image, as the update test reads it over
SSH: GRUB's grubenv on amd64 (`grub-editenv list`: ORDER, A_OK/B_OK, A_TRY/B_TRY, EDGE_GOOD,
EDGE_MAX_TRIES) or U-Boot's uboot.env on arm64 (`fw_printenv`: BOOT_ORDER, BOOT_A_LEFT/
BOOT_B_LEFT, EDGE_GOOD; see image/uboot/boot.cmd). One small class per question the test asks,
so that tests/image/test_update.py stays one module for both architectures.
"""

from __future__ import annotations

GRUBENV = "/boot/firmware/EFI/BOOT/grubenv"
GRUB_EDITENV = "/usr/lib/edge-appliance/rauc-bin/grub-editenv"
UBOOTENV = "/boot/firmware/uboot.env"
FW_SETENV = "/usr/lib/edge-appliance/rauc-bin/fw_setenv"   # remounts the FAT for the write
UBOOT_ATTEMPTS = "3"        # boot.scr's default, RAUC's boot-attempts after mark-good


class BootEnv:
    """Read and judge the environment of `arch`'s boot loader through a qemu_box.Box."""

    def __init__(self, arch: str):
        self.arch = arch
        self.uboot = arch == "arm64"
        self.path = UBOOTENV if self.uboot else GRUBENV

    def read(self, box) -> dict[str, str]:
        command = "fw_printenv" if self.uboot else f"grub-editenv {GRUBENV} list"
        out = box.ssh(command)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def fingerprint(self, box) -> str:
        """The file's checksum: what a refused install must not change."""
        return box.ssh(f"sha256sum {self.path}")

    def first(self, env: dict[str, str]) -> str:
        """The slot the boot loader tries first."""
        order = env.get("BOOT_ORDER", "A B") if self.uboot else env["ORDER"]
        return order.split()[0]

    def good(self, env: dict[str, str]) -> str | None:
        """The slot last confirmed healthy (boot-confirm's EDGE_GOOD; U-Boot: A until set)."""
        return env.get("EDGE_GOOD", "A") if self.uboot else env.get("EDGE_GOOD")

    def installed(self, env: dict[str, str], slot: str) -> bool:
        """RAUC made `slot` bootable after an install (mark-active)."""
        if self.uboot:
            return env.get(f"BOOT_{slot}_LEFT") == UBOOT_ATTEMPTS
        return env.get(f"{slot}_OK") == "1"

    def confirmed(self, env: dict[str, str], slot: str) -> bool:
        """`slot` is bootable with no try spent (marked good, attempts given back)."""
        if self.uboot:
            return env.get(f"BOOT_{slot}_LEFT") == UBOOT_ATTEMPTS
        return env.get(f"{slot}_OK") == "1" and env.get(f"{slot}_TRY") == "0"

    def bad(self, env: dict[str, str], slot: str) -> bool:
        """The slot is never booted again (marked bad, or out of attempts)."""
        if self.uboot:
            return env.get(f"BOOT_{slot}_LEFT") == "0"
        return env.get(f"{slot}_OK") == "0"

    def limit_tries(self, box, slot: str, tries: int) -> None:
        """Give `slot` `tries` boots before the boot loader goes back to the other one: GRUB's
        EDGE_MAX_TRIES holds for every trial from now on; U-Boot's BOOT_x_LEFT is set by RAUC
        at install (boot-attempts-primary), so this is done after the install."""
        if self.uboot:
            box.ssh(f"{FW_SETENV} BOOT_{slot}_LEFT {tries}")
            assert self.read(box)[f"BOOT_{slot}_LEFT"] == str(tries)
        else:
            box.ssh(f"{GRUB_EDITENV} {GRUBENV} set EDGE_MAX_TRIES={tries}")
            assert self.read(box)["EDGE_MAX_TRIES"] == str(tries)

    def trial_arg(self, args: dict[str, str]) -> str | None:
        """The trial number on the kernel command line: GRUB passes edge.trial=N; boot.scr
        passes none (boot-confirm tells a trial from EDGE_GOOD), so None on arm64."""
        return None if self.uboot else args.get("edge.trial")
