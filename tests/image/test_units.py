"""Fast checks of the systemd units in systemd/ (run by the normal `make test`).

`systemd-analyze verify` runs against a throw-away root holding the host's own unit library,
our units, and stand-ins for the programs they start, so that a missing target, a typo in a
directive or a wrong dependency fails here instead of on the box. The rest check the points
of the service contract that verify cannot see (Type=notify, the watchdog, the sandbox).
"""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
OVERLAY = REPO / "image" / "overlay"
UNIT_FILES = sorted(p for p in UNITS.iterdir()
                    if p.suffix in {".service", ".mount", ".timer", ".path"})
# libseccomp on the build host may not know the newest syscall names in @system-service
NOISE = ("Failed to parse system call",)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (make image-units-deps)")


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keep the case of directive names
    parser.read_string(path.read_text())
    return parser


def build_root(root: Path) -> Path:
    """A minimal root for `systemd-analyze verify --root`: the host's units plus ours."""
    host_units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                       if (p / "multi-user.target").exists()), None)
    if host_units is None:
        pytest.skip("the host has no systemd unit library to verify against")
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("usr/bin", root / "bin")
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy2("/bin/kill", root / "usr/bin/kill")
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for unit in UNIT_FILES:
        shutil.copy2(unit, unit_dir / unit.name)
    for dropin in UNITS.glob("*.service.d"):
        shutil.copytree(dropin, unit_dir / dropin.name)
    # the programs the units start: the on-box scripts themselves, the venv's entry point as
    # a stand-in (the venv only exists inside the image)
    shutil.copytree(OVERLAY / "usr/lib/edge-appliance", root / "usr/lib/edge-appliance")
    app = root / "opt/appliance/bin/appliance"
    app.parent.mkdir(parents=True)
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    return unit_dir


@needs_analyze
def test_systemd_analyze_verify_passes_on_every_unit(tmp_path):
    unit_dir = build_root(tmp_path / "root")
    units = [str(unit_dir / u.name) for u in UNIT_FILES]
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", f"--root={tmp_path / 'root'}", *units],
        capture_output=True, text=True, timeout=120)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and not any(n in line for n in NOISE)]
    assert result.returncode == 0 and not problems, "\n".join(problems) or result.returncode


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path):
    """Guard against the check above passing vacuously."""
    unit_dir = build_root(tmp_path / "root")
    bad = unit_dir / "appliance.service"
    bad.write_text(bad.read_text().replace("Type=notify", "Type=notifyy"))
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", f"--root={tmp_path / 'root'}", str(bad)],
        capture_output=True, text=True, timeout=120)
    assert "notifyy" in result.stdout + result.stderr


def test_appliance_service_contract():
    unit = read_unit(UNITS / "appliance.service")
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["NotifyAccess"] == "main"
    assert int(svc["WatchdogSec"]) > 0
    assert svc["Restart"] == "on-failure"
    assert svc["ExecStart"].split()[:3] == ["/opt/appliance/bin/appliance", "run", "--config"]
    assert svc["ExecStart"].split()[3] == "/data/config/appliance.toml"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["User"] == "appliance"
    assert set(svc["SupplementaryGroups"].split()) == {"gpio", "dialout", "lp", "systemd-journal"}
    assert svc["ProtectSystem"] == "strict"
    assert svc["ReadWritePaths"] == "/data"
    assert svc["PrivateTmp"] == "yes" and svc["NoNewPrivileges"] == "yes"
    assert svc["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert svc["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert "/data" in unit["Unit"]["RequiresMountsFor"].split()
    # room for every connection the configured limits allow (the 1024 default is too few)
    assert int(svc["LimitNOFILE"]) >= 8192


def test_user_and_groups_are_declared():
    lines = [line.split() for line in (UNITS / "sysusers.d/edge-appliance.conf").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert ["u", "appliance"] == lines[1][:2] or any(lx[:2] == ["u", "appliance"] for lx in lines)
    members = {lx[2] for lx in lines if lx[0] == "m" and lx[1] == "appliance"}
    assert members == {"gpio", "dialout", "lp", "systemd-journal"}


def test_data_mount_matches_the_image_layout():
    mount = read_unit(UNITS / "data.mount")["Mount"]
    config = (REPO / "image/config.sh").read_text()
    assert mount["Where"] == "/data"
    assert mount["What"] == "/dev/disk/by-label/edge-data"
    assert "EDGE_DATA_LABEL=edge-data" in config
    boot = read_unit(UNITS / "boot-firmware.mount")["Mount"]
    assert boot["What"].endswith("/EDGEBOOT") and "EDGE_BOOT_LABEL=EDGEBOOT" in config
    assert "ro" in boot["Options"].split(",")


def test_journal_is_persistent_and_capped():
    journal = read_unit(UNITS / "journald.conf.d/edge-appliance.conf")["Journal"]
    assert journal["Storage"] == "persistent"
    assert journal["SystemMaxUse"].endswith("M")


def test_on_box_scripts_are_executable_and_parse():
    scripts = [p for p in (OVERLAY / "usr/lib/edge-appliance").rglob("*") if p.is_file()]
    scripts.append(OVERLAY / "etc/initramfs-tools/scripts/local-bottom/edge-data")
    scripts.append(OVERLAY / "etc/initramfs-tools/hooks/edge-appliance")
    for script in scripts:
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
        python = script.is_file() and script.read_text().startswith("#!/usr/bin/python3")
        check = ["python3", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"] \
            if python else ["sh", "-n"]
        result = subprocess.run([*check, str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


def test_image_scripts_parse():
    for script in (REPO / "image").glob("*.sh"):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


def test_boot_confirmation_units():
    """A new slot is kept only after appliance.service is READY; a deadline gives up on it."""
    mark = read_unit(UNITS / "edge-mark-good.service")
    assert "appliance.service" in mark["Unit"]["After"].split()
    assert "appliance.service" in mark["Unit"]["Requires"].split()
    assert mark["Service"]["ExecStart"] == "/usr/lib/edge-appliance/boot-confirm mark-good"
    timer = read_unit(UNITS / "edge-boot-deadline.timer")
    assert timer["Timer"]["OnBootSec"] == "5min"
    deadline = read_unit(UNITS / "edge-boot-deadline.service")
    assert deadline["Service"]["ExecStart"] == "/usr/lib/edge-appliance/boot-confirm deadline"
    check = read_unit(UNITS / "edge-boot-check.service")
    assert "appliance.service" in check["Unit"]["Before"].split()
    customize = (REPO / "image/hooks/customize.sh").read_text()
    assert "edge-boot-check.service edge-mark-good.service edge-boot-deadline.timer" in customize


def test_rauc_system_conf_matches_the_image_layout():
    for arch, bootloader in (("amd64", "grub"), ("arm64", "uboot")):
        conf = read_unit(REPO / f"image/rauc/system.conf.{arch}")
        assert conf["system"]["compatible"] == f"edge-appliance-{arch}"
        assert conf["system"]["bootloader"] == bootloader
        assert conf["keyring"]["path"] == "/etc/rauc/keyring.pem"
        assert conf["keyring"]["check-purpose"] == "codesign"
        assert "-plain" in conf["system"]["bundle-formats"]
        assert conf["system"]["data-directory"].startswith("/data/")
        slots = {conf[s]["bootname"]: conf[s]["device"] for s in ("slot.rootfs.0", "slot.rootfs.1")}
        assert slots == {"A": "/dev/disk/by-partuuid/ed6e0001-02",
                         "B": "/dev/disk/by-partuuid/ed6e0001-03"}
        handler = conf["handlers"]["pre-install"]
        assert (OVERLAY / handler.lstrip("/")).exists(), handler
    # RAUC's uboot backend and the Pi's boot script share these names (bootname A/B)
    boot_cmd = (REPO / "image/uboot/boot.cmd").read_text()
    for variable in ("BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT"):
        assert f"${{{variable}}}" in boot_cmd, variable
    grub_conf = read_unit(REPO / "image/rauc/system.conf.amd64")
    grub_cfg = (REPO / "image/grub/grub.cfg").read_text()
    assert grub_conf["system"]["grubenv"] == "/boot/firmware/EFI/BOOT/grubenv"
    for variable in ("ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY", "EDGE_GOOD", "EDGE_MAX_TRIES"):
        assert f"${variable}" in grub_cfg or f"{variable}=" in grub_cfg, variable
