"""Firmware update test of the appliance image under QEMU (TCG): slow, so it runs only through
`make test-update` (the amd64 image: UEFI + GRUB) or `make test-update ARCH=arm64` (the
Raspberry Pi image through Debian's qemu_arm64 U-Boot and the image's boot.scr), which build
the image and `make bundle` and set EDGE_TEST_IMAGE and EDGE_TEST_BUNDLE. The architecture is
taken from the image's file name; the boot loader's side is read through tests/image/bootenv.py
(grubenv with grub-editenv, or uboot.env with fw_printenv).

One guest, in order (the tests share it and must run in file order):
  1. first boot on slot A, the native DICOM engine imports; the technician changes the AE
     title; amd64: the box is set to give a new slot 2 trial boots (grubenv EDGE_MAX_TRIES) to
     keep the test short (arm64: BOOT_A_LEFT=2 after the install in 5); arm64: systemd drives
     QEMU's i6300esb watchdog;
  2. a tampered bundle (bytes flipped in `make bundle`'s output), a bundle signed by a foreign
     CA and an unsigned one are refused by `appliance update FILE` with a clear message, and
     nothing changes: RAUC's slot status, the boot loader's environment, the start of the slots;
  3. a newer bundle (made here from the image's root file system, with a changed release file)
     installs into slot B; after a reboot the box runs slot B on trial, the appliance becomes
     ready, the slot is marked good; version changed, configuration kept, DICOM answers;
  4. arm64 only: PID 1 frozen (systemd's crash handler after SIGSEGV), so nothing pings the
     watchdog: QEMU's i6300esb resets the guest, U-Boot counts the boot, slot B comes back;
  5. a bundle whose appliance never becomes ready installs into slot A; after the allowed trial
     boots (each ended by the boot deadline) the box is back on slot B, healthy, slot A marked
     bad, and /data/update/history.jsonl tells what happened and why;
  6. a bundle on a USB stick is installed at power-on.
Bundles are derived on the host from the image's root file system with debugfs (no mounts)
and signed with image/bundle.sh and the build's development keys (build/keys).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.image.bootenv import BootEnv
from tests.image.qemu_box import REPO, Box, extract_partition, fat_put

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not os.environ.get("EDGE_TEST_IMAGE"),
                       reason="update test: run `make test-update` (sets EDGE_TEST_IMAGE)"),
]

ARCH = "arm64" if "arm64" in Path(os.environ.get("EDGE_TEST_IMAGE", "")).name else "amd64"
# arm64 runs under TCG about twice as slow as amd64 (boots 60-80 s against 35 s, installs and
# service restarts likewise) on a shared machine: the waits below are multiplied by SLOW
SLOW = 2.0 if ARCH == "arm64" else 1.0
READY_TIMEOUT = float(os.environ.get("EDGE_TEST_READY_TIMEOUT", str(420 * SLOW)))
AET = "UPDATEDAE"
MAX_TRIES = 2                       # trial boots a new slot gets in this test (default 3)
DEADLINE_S = 100                    # boot deadline in the never-healthy bundle (default 5 min)
BOOTENV = BootEnv(ARCH)
BUNDLE_SH = REPO / "image" / "bundle.sh"
results: dict[str, float] = {}


def report(line: str) -> None:
    print(f"\n[update] {line}", flush=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("update")


@pytest.fixture(scope="module")
def box(work):
    qemu = "qemu-system-aarch64" if ARCH == "arm64" else "qemu-system-x86_64"
    for tool in (qemu, "echoscu", "ssh", "scp", "ssh-keygen", "mcopy",
                 "sfdisk", "debugfs", "rauc", "mksquashfs"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make image-deps`")
    source = Path(os.environ["EDGE_TEST_IMAGE"])
    if not source.is_file():
        pytest.fail(f"EDGE_TEST_IMAGE={source} does not exist: run `make image IMAGE_ARCH=amd64`")
    if ARCH not in source.name:
        pytest.fail(f"{source.name}: the update test needs an amd64 or arm64 image")
    image = work / source.name
    subprocess.run(["cp", "--sparse=always", str(source), str(image)], check=True)
    # room on the data partition (grown at first boot) for the bundles copied into the box
    with open(image, "r+b") as f:
        f.truncate(image.stat().st_size + 2048 * 1024 * 1024)
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fat_put(image, "authorized_keys", (work / "id_ed25519.pub").read_text())
    fat_put(image, "appliance.toml", '[device]\nname = "update-test-box"\n\n'
            '[dicom]\nae_title = "EDGEBOX"\n\n[hal]\nbackend = "sim"\n')
    b = Box(image, ARCH, key, work)
    report(f"booting {image}; serial logs in {work}")
    yield b
    b.stop()
    if results:
        report("summary: " + ", ".join(f"{k} {v:.0f} s" for k, v in results.items()))


@pytest.fixture(scope="module")
def rootfs(work, box) -> Path:
    """Slot A's root file system as built (taken from the pristine image, not the box's)."""
    path = work / "rootfs.ext4"
    extract_partition(Path(os.environ["EDGE_TEST_IMAGE"]), 2, path)
    return path


# -- helpers ---------------------------------------------------------------------------------
def timed(name: str, since: float) -> float:
    seconds = time.monotonic() - since
    results[name] = seconds
    report(f"{name}: {seconds:.0f} s")
    return seconds


def sh(box: Box, command: str, timeout: float = 120) -> tuple[int, str]:
    """Run a command in the guest; its exit status and its output (stdout and stderr)."""
    out = box.ssh(f"{command} 2>&1; echo \"@rc=$?\"", timeout=timeout, check=False)
    text, _, code = out.rstrip().rpartition("@rc=")
    return int(code) if code.isdigit() else -1, text.strip()


def bootenv(box: Box) -> dict[str, str]:
    return BOOTENV.read(box)


def cmdline(box: Box) -> dict[str, str]:
    return dict((w.split("=", 1) + [""])[:2] for w in box.ssh("cat /proc/cmdline").split())


def history(box: Box) -> list[dict]:
    out = box.ssh("cat /data/update/history.jsonl 2>/dev/null || true")
    entries = []
    for line in out.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def boot_id(box: Box) -> str:
    return box.ssh("cat /proc/sys/kernel/random/boot_id").strip()


def wait_for(what: str, check, timeout: float, pause: float = 5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (AssertionError, subprocess.TimeoutExpired):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)


def wait_echo(box: Box, aet: str, timeout: float) -> None:
    wait_for(f"a C-ECHO answer from {aet}", lambda: box.echo(aet, timeout=5).returncode == 0,
             timeout, pause=2)


def make_bundle(work: Path, rootfs: Path, name: str, version: str,
                files: dict[str, str], env: dict[str, str] | None = None) -> Path:
    """A bundle of `rootfs` with `files` (path in the root -> content) written into it."""
    root = work / f"{name}.ext4"
    subprocess.run(["cp", "--sparse=always", str(rootfs), str(root)], check=True)
    commands = []
    for index, (path, content) in enumerate(files.items()):
        local = work / f"{name}-file-{index}"
        local.write_text(content)
        local.chmod(0o644)
        parent = str(Path(path).parent)
        probe = subprocess.run(["debugfs", "-R", f"stat {parent}", str(root)],
                               capture_output=True, text=True)
        if "File not found" in probe.stderr:
            commands.append(f"mkdir {parent}")
        commands += [f"rm {path}", f"write {local} {path}"]
    (work / f"{name}.debugfs").write_text("\n".join(commands) + "\n")
    subprocess.run(["debugfs", "-w", "-f", str(work / f"{name}.debugfs"), str(root)],
                   check=True, capture_output=True)
    for path, content in files.items():
        got = subprocess.run(["debugfs", "-R", f"cat {path}", str(root)], capture_output=True,
                             text=True).stdout
        assert got == content, f"debugfs did not write {path} into {name}"
    out = work / f"{name}.raucb"
    started = time.monotonic()
    subprocess.run([str(BUNDLE_SH), ARCH, str(root), str(out)], check=True,
                   env={**os.environ, "EDGE_BUNDLE_VERSION": version, **(env or {})})
    seconds = time.monotonic() - started
    report(f"made {out.name} ({out.stat().st_size >> 20} MiB) in {seconds:.0f} s")
    root.unlink()
    return out


def release_with_version(rootfs: Path, version: str) -> str:
    release = subprocess.run(["debugfs", "-R", "cat /etc/edge-appliance-release", str(rootfs)],
                             capture_output=True, text=True, check=True).stdout
    lines = [f"EDGE_APPLIANCE_VERSION={version}" if line.startswith("EDGE_APPLIANCE_VERSION=")
             else line for line in release.splitlines()]
    return "\n".join(lines) + "\n"


def built_version(rootfs: Path) -> str:
    release = subprocess.run(["debugfs", "-R", "cat /etc/edge-appliance-release", str(rootfs)],
                             capture_output=True, text=True, check=True).stdout
    return next(line.split("=", 1)[1] for line in release.splitlines()
                if line.startswith("EDGE_APPLIANCE_VERSION="))


def install(box: Box, bundle: Path) -> tuple[int, str]:
    """Copy a bundle into the box and install it the way a technician does."""
    started = time.monotonic()
    box.ssh("mkdir -p /data/test-bundles")
    box.put(bundle, f"/data/test-bundles/{bundle.name}")
    copied = time.monotonic()
    code, out = sh(box, f"/opt/appliance/bin/appliance update /data/test-bundles/{bundle.name}",
                   timeout=1800)
    box.ssh(f"rm -f /data/test-bundles/{bundle.name}")
    report(f"{bundle.name}: copied in {copied - started:.0f} s, `appliance update` "
           f"exit {code} after {time.monotonic() - copied:.0f} s: {out.splitlines()[-1:]}")
    return code, out


def snapshot(box: Box) -> dict[str, str]:
    """What a refused install must leave as it was."""
    return {
        "rauc status": box.ssh("rauc status --detailed --output-format=json"),
        "boot loader environment": BOOTENV.fingerprint(box),
        "inactive slot": box.ssh("head -c 64M /dev/disk/by-partuuid/ed6e0001-03 | sha256sum",
                                 timeout=300),
        "active slot": box.ssh("head -c 64M /dev/disk/by-partuuid/ed6e0001-02 | sha256sum",
                               timeout=300),
    }


def check_watchdog(box: Box) -> None:
    """arm64: QEMU's i6300esb (image/qemu-run.sh) is /dev/watchdog0, its driver loaded from the
    image's kernel, and systemd (PID 1) holds it with RuntimeWatchdogSec=15s as on the Pi."""
    identity = box.ssh("cat /sys/class/watchdog/watchdog0/identity", check=False).strip()
    assert "6300esb" in identity.lower(), \
        f"/dev/watchdog0 is {identity!r}, not QEMU's i6300esb: " + \
        box.ssh("lsmod | grep -i -e wdt -e esb; ls -l /dev/watchdog*", check=False)
    assert box.ssh("systemctl show -p RuntimeWatchdogUSec --value").strip() == "15s"
    held = box.ssh("for fd in /proc/1/fd/*; do readlink $fd; done", check=False).split()
    assert "/dev/watchdog0" in held, f"systemd does not hold /dev/watchdog0: {held}"
    report(f"watchdog: {identity}, driven by systemd (RuntimeWatchdogSec=15s)")


# -- the tests -------------------------------------------------------------------------------
def test_first_boot_on_slot_a(box):
    started = time.monotonic()
    box.power_on()
    box.wait_dicom_ready("EDGEBOX", READY_TIMEOUT)
    timed("first boot to DICOM-ready", started)
    box.wait_ssh(120)
    assert cmdline(box).get("rauc.slot") == "A"
    assert "edge.trial" not in cmdline(box)
    env = bootenv(box)
    assert BOOTENV.first(env) == "A" and BOOTENV.good(env) == "A", env
    if BOOTENV.uboot:
        # boot.scr spent one of A's attempts; boot-check gave it back (RAUC mark-good booted)
        wait_for("slot A's boot attempts given back",
                 lambda: BOOTENV.confirmed(bootenv(box), "A"), 120 * SLOW)
        check_watchdog(box)
    state = json.loads(box.ssh("rauc status --output-format=json"))
    assert state["booted"] == "A", state
    assert box.ssh("cat /etc/rauc/keyring.pem") == (REPO / "build/keys/ca.cert.pem").read_text()
    # the native DICOM engine is built for the image's architecture and finds DCMTK's
    # libraries in the root
    from appliance.dicom.engine import IMPLEMENTATION_CLASS_UID
    uid = box.ssh("/opt/appliance/bin/python -c 'import appliance.dicom.engine._engine as e; "
                  "print(e.IMPLEMENTATION_CLASS_UID)'", timeout=120).strip()
    assert uid == IMPLEMENTATION_CLASS_UID
    # the technician's change that the updates must keep
    box.ssh(f"runuser -u appliance -- /opt/appliance/bin/appliance config set dicom.ae_title "
            f"{AET} --config /data/config/appliance.toml")
    box.ssh("systemctl restart appliance", timeout=60 * SLOW)
    wait_echo(box, AET, 120 * SLOW)
    if not BOOTENV.uboot:
        BOOTENV.limit_tries(box, "A", MAX_TRIES)
    # the boot partition is read-only again after the write
    assert "ro" in box.ssh("findmnt -n -o OPTIONS /boot/firmware").strip().split(",")


def test_tampered_foreign_and_unsigned_bundles_are_refused(box, work):
    bundle = Path(os.environ["EDGE_TEST_BUNDLE"])
    tampered = work / "tampered.raucb"
    shutil.copyfile(bundle, tampered)
    with open(tampered, "r+b") as f:            # flip 64 bytes in the middle of the payload
        f.seek(tampered.stat().st_size // 3)
        chunk = f.read(64)
        f.seek(-len(chunk), 1)
        f.write(bytes(b ^ 0xFF for b in chunk))

    # a bundle of a tiny root file system, signed by another CA, and one without a signature
    foreign_keys = work / "foreign-keys"
    subprocess.run([str(REPO / "image" / "keys.sh"), str(foreign_keys)], check=True)
    tiny_dir = work / "tiny-root"
    (tiny_dir / "etc").mkdir(parents=True)
    (tiny_dir / "etc" / "hostname").write_text("not-our-firmware\n")
    (tiny_dir / "payload").write_bytes(os.urandom(256 * 1024))   # RAUC wants > 4 KiB squashed
    tiny = work / "tiny.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tiny_dir), str(tiny), "8M"], check=True)
    foreign = work / "foreign.raucb"
    subprocess.run([str(BUNDLE_SH), ARCH, str(tiny), str(foreign)], check=True, env={
        **os.environ, "EDGE_BUNDLE_VERSION": "99.0",
        "EDGE_KEYRING": str(foreign_keys / "ca.cert.pem"),
        "EDGE_SIGNING_CERT": str(foreign_keys / "signing.cert.pem"),
        "EDGE_SIGNING_KEY": str(foreign_keys / "signing.key.pem")})
    content = work / "unsigned-content"
    content.mkdir()
    shutil.copyfile(tiny, content / "rootfs.ext4")
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible=edge-appliance-{ARCH}\nversion=99.0\n\n"
        "[image.rootfs]\nfilename=rootfs.ext4\n")
    unsigned = work / "unsigned.raucb"
    subprocess.run(["mksquashfs", str(content), str(unsigned), "-all-root", "-noappend",
                    "-quiet"], check=True, capture_output=True)

    before = snapshot(box)
    for name, path, words in (("tampered", tampered, ("corrupt",)),
                              ("foreign-signed", foreign, ("sign", "trust", "certificate")),
                              ("unsigned", unsigned, ("sign", "bundle"))):
        code, out = install(box, path)
        assert code == 1, f"{name} bundle: exit {code}:\n{out}"
        assert "Traceback" not in out, out
        last = history(box)[-1]
        reason = (last.get("reason") or "").lower()
        assert last["event"] == "install-refused", (name, last)
        assert any(w in reason for w in words), f"{name} bundle, unclear reason: {last}"
        report(f"{name} bundle refused: {last['reason']}")
        after = snapshot(box)
        for key in before:
            assert after[key] == before[key], \
                f"the {name} bundle changed the {key}:\n{before[key]}\n---\n{after[key]}"
    assert cmdline(box).get("rauc.slot") == "A"
    wait_echo(box, AET, 60)


def test_new_bundle_is_installed_tried_and_kept(box, work, rootfs):
    version = built_version(rootfs) + "+update-test.1"
    bundle = make_bundle(work, rootfs, "newer", version,
                         {"/etc/edge-appliance-release": release_with_version(rootfs, version)})
    started = time.monotonic()
    code, out = install(box, bundle)
    assert code == 0, out
    timed("install of a good bundle (copy + appliance update)", started)
    env = bootenv(box)
    assert BOOTENV.first(env) == "B" and BOOTENV.installed(env, "B"), env
    assert BOOTENV.good(env) == "A", env          # not good before it proved itself
    events = [e["event"] for e in history(box)]
    assert events[-1] == "installed", events

    old_boot = boot_id(box)
    started = time.monotonic()
    box.command_and_disconnect("systemctl reboot")
    box.wait_ssh(READY_TIMEOUT, not_boot_id=old_boot)
    wait_echo(box, AET, READY_TIMEOUT)
    timed("reboot into slot B to DICOM-ready", started)
    args = cmdline(box)
    assert args.get("rauc.slot") == "B", args
    assert BOOTENV.trial_arg(args) == (None if BOOTENV.uboot else "1"), args
    assert "ed6e0001-03" in args.get("root", ""), args
    wait_for("slot B marked good", lambda: BOOTENV.good(bootenv(box)) == "B", 180 * SLOW)
    env = bootenv(box)
    assert BOOTENV.confirmed(env, "B") and BOOTENV.first(env) == "B", env
    state = json.loads(box.ssh("rauc status --detailed --output-format=json"))
    assert state["booted"] == "B", state
    slots = {s["bootname"]: s for entry in state["slots"] for s in entry.values()}
    assert slots["B"]["boot_status"] == "good", slots["B"]
    assert slots["B"]["slot_status"]["bundle"]["version"] == version, slots["B"]
    assert f"EDGE_APPLIANCE_VERSION={version}" in box.ssh("cat /etc/edge-appliance-release")
    assert f'ae_title = "{AET}"' in box.ssh("cat /data/config/appliance.toml")
    events = [(e["event"], e["slot"]) for e in history(box)]
    assert events[-2:] == [("trial-boot", "B"), ("marked-good", "B")], events
    assert box.ssh("systemctl is-active appliance").strip() == "active"


def test_a_hung_system_is_reset_by_the_watchdog(box):
    """arm64: PID 1 frozen (systemd's crash handler freezes after SIGSEGV), so nothing pings
    the watchdog; QEMU's i6300esb resets the guest (no clean reboot: the kernel's "reboot:
    Restarting system" never appears), U-Boot counts the boot, the confirmed slot B comes back
    and gets its attempt back. (systemd's own "Caught <SEGV>" line did not reach the journal
    here, so the test reads the console.)"""
    if not BOOTENV.uboot:
        pytest.skip("the amd64 QEMU run has no watchdog device (docs/image.md, Known limits)")
    old_boot = boot_id(box)
    before = len(history(box))
    mark = box.serial.stat().st_size
    started = time.monotonic()
    box.command_and_disconnect("kill -SEGV 1")
    box.wait_ssh(300 * SLOW, not_boot_id=old_boot)
    timed("PID 1 frozen -> watchdog reset -> SSH on slot B", started)
    # PID 1 froze: its freeze() closes every file descriptor, /dev/watchdog0 among them, with
    # the watchdog still running (the kernel says so); then the board was reset: no kernel
    # reboot ("reboot: Restarting system"), and U-Boot chose the slot again
    console = box.serial.read_bytes()[mark:].decode(errors="replace")
    assert "watchdog did not stop!" in console, console[-3000:]
    assert "reboot: Restarting system" not in console, console[-3000:]
    assert "edge: slot B chosen" in console, console[-3000:]
    assert cmdline(box).get("rauc.slot") == "B"
    wait_for("slot B's boot attempt given back", lambda: BOOTENV.confirmed(bootenv(box), "B"),
             120 * SLOW)
    wait_echo(box, AET, READY_TIMEOUT)
    # not a trial and not a fall-back: the confirmed slot simply came back
    events = [e["event"] for e in history(box)[before:]]
    assert not {"trial-boot", "fell-back", "boot-failed"} & set(events), events


def test_bundle_that_never_becomes_healthy_falls_back(box, work, rootfs):
    version = built_version(rootfs) + "+never-ready"
    bundle = make_bundle(work, rootfs, "never-ready", version, {
        "/etc/edge-appliance-release": release_with_version(rootfs, version),
        "/etc/systemd/system/appliance.service.d/never-ready.conf":
            "[Service]\nExecStart=\nExecStart=/bin/sh -c 'echo \"update test: this firmware "
            "never becomes ready\"; exit 3'\n",
        "/etc/systemd/system/edge-boot-deadline.timer.d/test.conf":
            f"[Timer]\nOnBootSec=\nOnBootSec={DEADLINE_S}s\n",
    })
    code, out = install(box, bundle)
    assert code == 0, out
    env = bootenv(box)
    assert BOOTENV.first(env) == "A" and BOOTENV.good(env) == "B", env
    if BOOTENV.uboot:
        BOOTENV.limit_tries(box, "A", MAX_TRIES)   # RAUC gave it 3 (boot-attempts-primary)
        # the boot partition is read-only again after the write
        assert "ro" in box.ssh("findmnt -n -o OPTIONS /boot/firmware").strip().split(",")

    old_boot = boot_id(box)
    started = time.monotonic()
    box.command_and_disconnect("systemctl reboot")
    seen: list[str] = []

    def back_on_b() -> bool:
        args = cmdline(box)
        current = boot_id(box)
        if current not in seen:
            seen.append(current)
            if BOOTENV.uboot:       # no edge.trial: U-Boot's attempts left for slot A
                tried = f"BOOT_A_LEFT {bootenv(box).get('BOOT_A_LEFT', '-')}"
            else:
                tried = f"trial {args.get('edge.trial', '-')}"
            report(f"boot {len(seen)} after the install: slot {args.get('rauc.slot')}, "
                   f"{tried}, {time.monotonic() - started:.0f} s")
        return current != old_boot and args.get("rauc.slot") == "B"

    wait_for("the box back on slot B", back_on_b,
             READY_TIMEOUT + MAX_TRIES * (DEADLINE_S + 300 * SLOW))
    wait_echo(box, AET, READY_TIMEOUT)
    timed(f"install of a never-healthy slot -> {MAX_TRIES} trials -> back on B", started)
    assert "edge.trial" not in cmdline(box)
    wait_for("the fall-back recorded",
             lambda: any(e["event"] == "fell-back" for e in history(box)), 120 * SLOW)
    entries = history(box)
    since = max(i for i, e in enumerate(entries) if e["event"] == "installed")
    events = [(e["event"], e["slot"]) for e in entries[since + 1:]]
    assert events == [("trial-boot", "A"), ("boot-failed", "A")] * MAX_TRIES + \
        [("fell-back", "B")], events
    failed = [e for e in entries[since + 1:] if e["event"] == "boot-failed"]
    assert all("appliance.service" in e["reason"] for e in failed), failed
    assert "never becomes ready" in failed[-1]["reason"], failed[-1]
    fell_back = entries[-1]
    assert fell_back["event"] == "fell-back" and "slot A" in fell_back["reason"], fell_back
    assert fell_back["version"] == version, fell_back
    report(f"fell back: {fell_back['reason']}")
    # the failed slot is never tried again; B stays the good, primary slot
    env = bootenv(box)
    assert BOOTENV.first(env) == "B" and BOOTENV.bad(env, "A") and BOOTENV.good(env) == "B", env
    state = json.loads(box.ssh("rauc status --output-format=json"))
    assert state["booted"] == "B", state
    assert box.ssh("systemctl is-active appliance").strip() == "active"
    assert f'ae_title = "{AET}"' in box.ssh("cat /data/config/appliance.toml")
    assert "+update-test.1" in box.ssh("cat /etc/edge-appliance-release")


def test_a_bundle_on_a_usb_stick_is_installed(box, work):
    """A technician plugs in a stick with one bundle (here: present from power-on)."""
    bundle = work / "newer.raucb"
    stick = work / "stick.vfat"
    size_mb = (bundle.stat().st_size >> 20) + 64
    subprocess.run(["mkfs.vfat", "-n", "EDGEUPDATE", "-C", str(stick), str(size_mb * 1024)],
                   check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(stick), str(bundle), "::/edge-appliance-update.raucb"],
                   check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    before = len(history(box))
    box.command_and_disconnect("systemctl poweroff")
    assert box.wait_off(180 * SLOW), f"the guest did not power off:\n{box.serial_tail()}"
    os.environ["EDGE_QEMU_EXTRA"] = (f"-device qemu-xhci,id=xhci -drive if=none,id=stick,"
                                     f"format=raw,file={stick} -device usb-storage,bus=xhci.0,"
                                     f"drive=stick,removable=on")
    started = time.monotonic()
    try:
        box.power_on()
    finally:
        del os.environ["EDGE_QEMU_EXTRA"]
    box.wait_ssh(READY_TIMEOUT)
    assert cmdline(box).get("rauc.slot") == "B"

    def finished():
        events = [e for e in history(box)[before:] if e.get("source") == "usb"]
        done = [e for e in events
                if e["event"] in ("installed", "install-refused", "install-failed")]
        return done[-1] if done else None

    result = wait_for("the USB stick's bundle installed", finished, 600 * SLOW)
    timed("power-on with the stick to installed", started)
    assert result["event"] == "installed" and result["slot"] == "A", result
    env = bootenv(box)
    assert BOOTENV.first(env) == "A" and BOOTENV.installed(env, "A") and \
        BOOTENV.good(env) == "B", env
    status = json.loads(box.ssh("cat /data/update/status.json"))
    assert status["state"] == "succeeded" and status["source"] == "usb", status
