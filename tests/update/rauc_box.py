"""A real RAUC 1.8 on the test host: a CA, a signing certificate and a stranger's one made
with openssl, `rauc bundle` to make signed bundles, and `rauc service` on a private D-Bus
daemon with two file-backed root slots (A booted, B the target) and a custom bootloader
backend that keeps the primary slot in a file.

Bundles are RAUC's `plain` format: `verity` needs device-mapper, which this sandbox lacks
(the QEMU test, `make test-update`, installs the image's real bundles). Needs root (RAUC
mounts the bundle through a loop device); tests skip when that is not possible here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

COMPATIBLE = "edge-appliance-test"
SLOT_BYTES = 256 * 1024
BUS_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={socket}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
"""
BACKEND = """#!/bin/sh
# RAUC custom bootloader backend for the tests: the primary slot and each slot's state in files
d={state}
case "$1" in
  get-primary) cat "$d/primary" ;;
  set-primary) echo "$2" > "$d/primary" ;;
  get-state) cat "$d/state.$2" 2>/dev/null || echo good ;;
  set-state) echo "$3" > "$d/state.$2" ;;
  *) exit 1 ;;
esac
"""


def usable() -> str:
    """Why a real RAUC cannot run here ('' if it can)."""
    for tool in ("rauc", "dbus-daemon", "openssl", "mksquashfs"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install rauc dbus squashfs-tools)"
    if os.geteuid() != 0:
        return "RAUC mounts bundles through a loop device: run as root"
    if not Path("/dev/loop-control").exists():
        return "no loop devices in this sandbox"
    return ""


needs_rauc = pytest.mark.skipif(bool(usable()), reason=usable() or "ok")


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True,
                          timeout=120, **kwargs)


class Keys:
    """A CA (the box's keyring), a signing certificate under it, and a stranger's own."""

    def __init__(self, where: Path):
        self.dir = where
        where.mkdir(parents=True, exist_ok=True)
        self.ca_cert, self.ca_key = where / "ca.cert.pem", where / "ca.key.pem"
        self.cert, self.key = where / "signing.cert.pem", where / "signing.key.pem"
        self.stranger_cert = where / "stranger.cert.pem"
        self.stranger_key = where / "stranger.key.pem"
        subj = ["-days", "30", "-nodes", "-newkey", "rsa:2048"]
        run("openssl", "req", "-x509", *subj, "-keyout", self.ca_key, "-out", self.ca_cert,
            "-subj", "/CN=Edge test CA", "-addext", "basicConstraints=critical,CA:TRUE")
        run("openssl", "req", *subj, "-keyout", self.key, "-out", where / "signing.csr",
            "-subj", "/CN=Edge test signing")
        run("openssl", "x509", "-req", "-in", where / "signing.csr", "-CA", self.ca_cert,
            "-CAkey", self.ca_key, "-CAcreateserial", "-out", self.cert, "-days", "30")
        run("openssl", "req", "-x509", *subj, "-keyout", self.stranger_key,
            "-out", self.stranger_cert, "-subj", "/CN=Somebody else")


def make_bundle(keys: Keys, out: Path, version: str = "2.0.0", compatible: str = COMPATIBLE,
                stranger: bool = False, payload: bytes | None = None) -> Path:
    """A signed plain bundle whose rootfs image is `payload` (random by default)."""
    content = Path(tempfile.mkdtemp(prefix="content.", dir=out.parent))
    (content / "rootfs.img").write_bytes(payload if payload is not None else os.urandom(64 * 1024))
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=plain\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n")
    cert, key = (keys.stranger_cert, keys.stranger_key) if stranger else (keys.cert, keys.key)
    run("rauc", "bundle", "--cert", cert, "--key", key, content, out)
    shutil.rmtree(content)
    return out


class RaucBox:
    """`rauc service` on its own D-Bus, slot A booted; `env` reaches it from `rauc`."""

    def __init__(self, where: Path, keys: Keys):
        self.dir = where
        self.keys = keys
        where.mkdir(parents=True, exist_ok=True)
        self.state = where / "boot"
        self.state.mkdir()
        (self.state / "primary").write_text("A\n")
        self.slots = {name: where / f"slot{name}.img" for name in "AB"}
        for path in self.slots.values():
            path.write_bytes(b"\0" * SLOT_BYTES)
        backend = where / "backend.sh"
        backend.write_text(BACKEND.format(state=self.state))
        backend.chmod(0o755)
        (where / "mnt").mkdir()
        self.conf = where / "system.conf"
        self.conf.write_text(
            f"[system]\ncompatible={COMPATIBLE}\nbootloader=custom\n"
            f"mountprefix={where / 'mnt'}\ndata-directory={where / 'rauc-data'}\n\n"
            f"[handlers]\nbootloader-custom-backend={backend}\n\n"
            f"[keyring]\npath={keys.ca_cert}\n\n"
            f"[slot.rootfs.0]\ndevice={self.slots['A']}\ntype=raw\nbootname=A\n\n"
            f"[slot.rootfs.1]\ndevice={self.slots['B']}\ntype=raw\nbootname=B\n")
        # sun_path is short: the bus socket lives in a short directory of its own
        self.bus_dir = Path(tempfile.mkdtemp(prefix="rbus", dir="/tmp"))
        socket = self.bus_dir / "bus"
        (self.bus_dir / "bus.conf").write_text(BUS_POLICY.format(socket=socket))
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={socket}"}
        self.bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile",
                                     f"--config-file={self.bus_dir / 'bus.conf'}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.service = None
        try:
            self._wait(socket.exists, "the D-Bus daemon")
            self.log = open(where / "rauc-service.log", "w")
            self.service = subprocess.Popen(
                ["rauc", "service", f"--conf={self.conf}", "--override-boot-slot=A"],
                stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
            self._wait(self._answers, "rauc service")
        except BaseException:
            self.close()
            raise

    def _answers(self) -> bool:
        result = subprocess.run(["rauc", "status", "--output-format=json"],
                                capture_output=True, env={**os.environ, **self.env}, timeout=30)
        return result.returncode == 0

    def _wait(self, predicate, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.1)

    @property
    def primary(self) -> str:
        return (self.state / "primary").read_text().strip()

    def slot_bytes(self, name: str) -> bytes:
        return self.slots[name].read_bytes()

    def close(self) -> None:
        for process in (self.service, self.bus):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.bus_dir, ignore_errors=True)
