"""A small disk laid out like the appliance's (FAT boot partition, slots A and B) for booting the
real boot script (image/uboot/boot.cmd with the QEMU prelude) under Debian's qemu_arm64 U-Boot.

Each slot holds a stand-in kernel: a gzip-compressed arm64 Linux Image (the format of Debian's
vmlinuz, so `booti` unpacks it as it would the real one) of a few instructions that prints which
slot it is on the PL011 serial port and powers the machine off through PSCI. /boot/vmlinuz and
/boot/initrd.img are relative symbolic links, as in the image. The environment in the FAT
partition's uboot.env is read and written on the host with libubootenv's fw_printenv and
fw_setenv, as RAUC does on the box.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MKSCRIPT = REPO / "image/uboot/mkscript.sh"
UBOOT_BIN = Path(os.environ.get("EDGE_UBOOT_QEMU_BIN", "/usr/lib/u-boot/qemu_arm64/u-boot.bin"))
DISK_ID = 0x5EED0B07                 # not the image's: root= must come from the disk itself
ENV_SIZE = 0x4000                    # CONFIG_ENV_SIZE of rpi_arm64 and of the QEMU prelude
SECTOR = 512
FAT_START, FAT_MB, SLOT_MB = 2048, 40, 6
TOOLS = ("qemu-system-aarch64", "mkimage", "fw_printenv", "fw_setenv", "mcopy", "mkfs.vfat",
         "mkfs.ext4", "sfdisk")
KVER = "6.1.0-99-arm64"


def missing_tools() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    return missing + ([str(UBOOT_BIN)] if not UBOOT_BIN.is_file() else [])


def stand_in_kernel(message: str) -> bytes:
    """An arm64 Image (64-byte header, magic ARM\\x64) that writes message to the PL011 UART of
    QEMU's virt machine (0x09000000) and calls PSCI SYSTEM_OFF (hvc), so QEMU exits."""
    code = [
        0x10000141,  # 0x40 adr  x1, msg (0x68)
        0xD2A12002,  # 0x44 mov  x2, #0x09000000
        0x38401423,  # 0x48 ldrb w3, [x1], #1
        0x34000063,  # 0x4c cbz  w3, 0x58
        0x39000043,  # 0x50 strb w3, [x2]
        0x17FFFFFD,  # 0x54 b    0x48
        0x52800100,  # 0x58 mov  w0, #0x8
        0x72B08000,  # 0x5c movk w0, #0x8400, lsl #16   (PSCI SYSTEM_OFF)
        0xD4000002,  # 0x60 hvc  #0
        0x14000000,  # 0x64 b    .
    ]
    body = struct.pack(f"<{len(code)}I", *code) + message.encode() + b"\r\n\0"
    image_size = 0x10000
    header = struct.pack("<II QQQ QQQ I I", 0x14000010, 0,     # b 0x40; code1
                         0, image_size, 0xA,                  # text_offset, size, flags
                         0, 0, 0, 0x644D5241, 0)              # res2-4, magic "ARM\x64", res5
    image = header + body
    return image + b"\0" * (image_size - len(image))


def make_slot(root: Path, slot: str, kernel: bool = True) -> Path:
    boot = root / "boot"
    boot.mkdir(parents=True)
    if kernel:
        kernel_bytes = stand_in_kernel(f"EDGE-STAND-IN-KERNEL slot={slot}")
        (boot / f"vmlinuz-{KVER}").write_bytes(gzip.compress(kernel_bytes, mtime=0))
        (boot / f"initrd.img-{KVER}").write_bytes(f"initramfs of slot {slot}\n".encode() * 64)
        (boot / "vmlinuz").symlink_to(f"vmlinuz-{KVER}")
        (boot / "initrd.img").symlink_to(f"initrd.img-{KVER}")
    return root


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


class Disk:
    """disk.img in tmp: p1 FAT32 with boot.scr (and uboot.env once saved), p2/p3 ext4 slots."""

    def __init__(self, tmp: Path, slot_b_kernel: bool = True):
        self.tmp = tmp
        self.img = tmp / "disk.img"
        self.env_file = tmp / "uboot.env"
        self.config = tmp / "fw_env.config"
        self.config.write_text(f"{self.env_file} 0x0000 {ENV_SIZE:#x}\n")
        self.fat_offset = FAT_START * SECTOR
        parts = tmp / "parts"
        parts.mkdir()
        run([str(MKSCRIPT), "qemu", str(parts / "boot.scr")])
        run(["mkfs.vfat", "-F", "32", "-n", "EDGEBOOT", "-C", str(parts / "boot.vfat"),
             str(FAT_MB * 1024)])
        run(["mcopy", "-i", str(parts / "boot.vfat"), str(parts / "boot.scr"), "::/boot.scr"])
        layout = [(parts / "boot.vfat", FAT_START, FAT_MB)]
        start = FAT_START + FAT_MB * 2048
        for slot, has_kernel in (("A", True), ("B", slot_b_kernel)):
            root = make_slot(tmp / f"root{slot}", slot, has_kernel)
            fs = parts / f"root{slot}.ext4"
            run(["mkfs.ext4", "-q", "-F", "-L", f"edge-root{slot}", "-d", str(root), str(fs),
                 f"{SLOT_MB}M"])
            layout.append((fs, start, SLOT_MB))
            start += SLOT_MB * 2048
        with open(self.img, "wb") as disk:
            disk.truncate(start * SECTOR)
        types = ["c", "83", "83"]
        table = f"label: dos\nlabel-id: {DISK_ID:#x}\nunit: sectors\n" + "".join(
            f"start={s}, size={mb * 2048}, type={t}{', bootable' if t == 'c' else ''}\n"
            for (_, s, mb), t in zip(layout, types, strict=True))
        run(["sfdisk", "-q", str(self.img)], input=table)
        with open(self.img, "r+b") as disk:
            for fs, s, _ in layout:
                disk.seek(s * SECTOR)
                disk.write(fs.read_bytes())
        shutil.rmtree(parts)

    def partuuid(self, part: int) -> str:
        return f"{DISK_ID:08x}-{part:02d}"

    # ---- the environment, as RAUC sees it on the box
    def fat_files(self) -> list[str]:
        out = run(["mdir", "-b", "-i", f"{self.img}@@{self.fat_offset}", "::/"]).stdout
        return [line.rsplit("/", 1)[-1] for line in out.split()]

    def pull_env(self) -> None:
        run(["mcopy", "-o", "-n", "-i", f"{self.img}@@{self.fat_offset}", "::/uboot.env",
             str(self.env_file)])

    def push_env(self) -> None:
        run(["mcopy", "-o", "-i", f"{self.img}@@{self.fat_offset}", str(self.env_file),
             "::/uboot.env"])

    def printenv(self) -> dict[str, str]:
        """The environment read back with fw_printenv from the FAT partition's uboot.env."""
        self.pull_env()
        out = run(["fw_printenv", "-c", str(self.config)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def setenv(self, **values: str) -> None:
        """fw_setenv against uboot.env, as RAUC's uboot backend does (mark-active, mark-bad)."""
        self.pull_env()
        for name, value in values.items():
            run(["fw_setenv", "-c", str(self.config), name, value])
        self.push_env()

    def damage_env(self, offset: int) -> None:
        """Flip one byte of uboot.env, as a write cut short by a power loss leaves it."""
        self.pull_env()
        data = bytearray(self.env_file.read_bytes())
        data[offset] ^= 0xFF
        self.env_file.write_bytes(bytes(data))
        self.push_env()

    # ---- one power-on
    def boot(self, timeout: float = 120) -> str:
        """Power on under QEMU until the stand-in kernel powers off or U-Boot resets (QEMU
        exits on either: -no-reboot). Returns the serial output."""
        argv = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "1024",
                "-bios", str(UBOOT_BIN), "-display", "none", "-serial", "stdio",
                "-monitor", "none", "-nic", "none", "-no-reboot",
                "-drive", f"if=none,file={self.img},format=raw,id=disk",
                "-device", "virtio-blk-device,drive=disk"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL, errors="replace")
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if exc.stdout else ""
            raise AssertionError(f"QEMU did not power off within {timeout} s:\n{out}") from exc
        return result.stdout.replace("\r", "") + result.stderr
