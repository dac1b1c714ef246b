"""Drive one appliance image under QEMU for the boot test: start it with image/qemu-run.sh,
pull the plug, talk to it over the forwarded ports (DICOM with DCMTK's echoscu, SSH with a
test key), and edit its FAT boot partition with mtools the way a technician would.
Every address used is 127.0.0.1; the guest's own network is QEMU's restricted user network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "image" / "qemu-run.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def partitions(image: Path) -> list[dict]:
    """The image's partition table as sfdisk -J sees it (start and size in sectors)."""
    out = subprocess.run(["sfdisk", "-J", str(image)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["partitiontable"]["partitions"]


def fat_put(image: Path, name: str, content: str) -> None:
    """Write a file onto partition 1 (FAT) of the image with mtools: no mount, no loop device."""
    start = partitions(image)[0]["start"] * 512
    src = image.parent / f".fat-put-{name}"
    src.write_text(content)
    subprocess.run(["mcopy", "-o", "-i", f"{image}@@{start}", str(src), f"::/{name}"],
                   check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    src.unlink()


def extract_partition(image: Path, number: int, dest: Path) -> None:
    part = partitions(image)[number - 1]
    subprocess.run(["dd", f"if={image}", f"of={dest}", "bs=1M", "iflag=skip_bytes,count_bytes",
                    f"skip={part['start'] * 512}", f"count={part['size'] * 512}",
                    "conv=sparse", "status=none"], check=True)


class Box:
    """One QEMU guest booted from `image`, with its serial console logged to `workdir`."""

    def __init__(self, image: Path, arch: str, key: Path, workdir: Path):
        self.image, self.arch, self.key, self.workdir = image, arch, key, workdir
        self.dicom_port, self.ssh_port, self.web_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.boots = 0
        self.started_at = 0.0

    # -- power -------------------------------------------------------------------------
    def power_on(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.boots += 1
        self.serial = self.workdir / f"serial-{self.boots}.log"
        env = {**os.environ, "EDGE_QEMU_SERIAL": str(self.serial),
               "EDGE_QEMU_DICOM_PORT": str(self.dicom_port),
               "EDGE_QEMU_SSH_PORT": str(self.ssh_port), "EDGE_QEMU_WEB_PORT": str(self.web_port)}
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([str(RUNNER), str(self.image), self.arch], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / f"qemu-{self.boots}.err", "w"))

    def pull_plug(self) -> None:
        """SIGKILL QEMU: whatever the guest had not written to its disk is lost."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait_off(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.pull_plug()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def serial_tail(self, lines: int = 60) -> str:
        try:
            text = self.serial.read_text(errors="replace").splitlines()
        except OSError:
            return "(no serial log)"
        return "\n".join(text[-lines:])

    # -- DICOM -------------------------------------------------------------------------
    def echo(self, called: str = "EDGEBOX", timeout: int = 10) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["echoscu", "-aet", "BOOTTEST", "-aec", called, "-to", str(timeout), "-ta",
             str(timeout), "-td", str(timeout), "127.0.0.1", str(self.dicom_port)],
            capture_output=True, text=True, timeout=timeout * 4,
            env={**os.environ, "TCP_NODELAY": "1"})

    def wait_dicom_ready(self, called: str, timeout: float) -> float:
        """Seconds from power-on until a C-ECHO to `called` succeeds."""
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"QEMU exited while booting:\n{self.serial_tail()}")
            if self.echo(called, timeout=5).returncode == 0:
                return time.monotonic() - self.started_at
            time.sleep(1)
        raise AssertionError(f"no C-ECHO answer from {called} within {timeout:.0f} s; "
                             f"serial console:\n{self.serial_tail()}")

    def wait_active(self, unit: str = "appliance", timeout: float = 120) -> float:
        """Seconds until systemd reports `unit` active: the appliance answers C-ECHO as soon as
        its DICOM component runs, and reports READY once the last component (the web page,
        whose imports take seconds on an emulated CPU) has started too."""
        started = time.monotonic()
        state = ""
        while time.monotonic() - started < timeout:
            state = self.ssh(f"systemctl is-active {unit}", check=False).strip()
            if state == "active":
                return time.monotonic() - started
            if state == "failed":
                break
            time.sleep(1)
        raise AssertionError(f"{unit} is {state!r}, not active, {timeout:.0f} s after DICOM was "
                             f"ready:\n{self.ssh(f'journalctl -b -u {unit} -n 30', check=False)}")

    # -- web -------------------------------------------------------------------------
    def http_get_json(self, path: str, timeout: float = 30) -> tuple[int, object]:
        """GET http://127.0.0.1:WEB_PORT/path over the forwarded web port."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    # -- SSH ---------------------------------------------------------------------------
    def ssh(self, command: str, timeout: float = 60, check: bool = True) -> str:
        result = subprocess.run(
            ["ssh", "-i", str(self.key), "-p", str(self.ssh_port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "root@127.0.0.1", command],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"ssh {command!r} failed ({result.returncode}): "
                                 f"{result.stderr.strip()} {result.stdout.strip()}")
        return result.stdout

    def put(self, local: Path, remote: str, timeout: float = 900) -> None:
        """Copy a host file into the guest over the forwarded SSH port."""
        result = subprocess.run(
            ["scp", "-q", "-i", str(self.key), "-P", str(self.ssh_port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", str(local),
             f"root@127.0.0.1:{remote}"],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError(f"scp {local} -> {remote} failed: {result.stderr.strip()}")

    def command_and_disconnect(self, command: str) -> None:
        """Run a command that ends the SSH session (reboot, poweroff)."""
        try:
            self.ssh(command, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pass

    def wait_ssh(self, timeout: float, not_boot_id: str | None = None) -> str:
        """Wait until SSH answers (from a boot other than `not_boot_id`); return the boot id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"QEMU exited:\n{self.serial_tail()}")
            try:
                out = self.ssh("cat /proc/sys/kernel/random/boot_id", timeout=20, check=False)
            except subprocess.TimeoutExpired:
                out = ""
            boot_id = out.strip()
            if boot_id and boot_id != not_boot_id:
                return boot_id
            time.sleep(2)
        raise AssertionError(f"no SSH answer within {timeout:.0f} s:\n{self.serial_tail()}")
