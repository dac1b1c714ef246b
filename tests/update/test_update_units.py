"""The update units and the USB udev rule: `systemd-analyze verify` like every other unit
(tests/image/test_units.py), and the points of the install-path contract it cannot see."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.image.test_units import (
    NOISE,
    OVERLAY,
    SYSTEMD_ANALYZE,
    UNITS,
    build_root,
    needs_analyze,
    read_unit,
)

UPDATE_UNITS = ["edge-update-request.path", "edge-update-request.service",
                "edge-update-usb@.service"]
RULE = OVERLAY / "usr/lib/udev/rules.d/90-edge-update-usb.rules"


def verify(tmp_path, names: list[str], edit=None) -> list[str]:
    unit_dir = build_root(tmp_path / "root")
    for name in UPDATE_UNITS:
        shutil.copy2(UNITS / name, unit_dir / name)
    if edit:
        edit(unit_dir)
    # a template is verified through an instance of it, as udev starts it
    targets = [str(unit_dir / n).replace("@.service", "@sda1.service") for n in names]
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", f"--root={tmp_path / 'root'}", *targets],
        capture_output=True, text=True, timeout=120)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and not any(n in line for n in NOISE)]
    if result.returncode != 0 and not problems:
        problems = [f"exit status {result.returncode}"]
    return problems


@needs_analyze
def test_update_units_pass_systemd_analyze_verify(tmp_path):
    assert verify(tmp_path, UPDATE_UNITS) == []


@needs_analyze
def test_verify_sees_a_broken_update_unit(tmp_path):
    def break_it(unit_dir):
        unit = unit_dir / "edge-update-request.path"
        unit.write_text(unit.read_text().replace("PathExists=", "PathExist="))

    problems = verify(tmp_path, ["edge-update-request.path"], break_it)
    assert any("PathExist" in p for p in problems), problems


def test_request_path_starts_the_installer_for_the_web_upload():
    path = read_unit(UNITS / "edge-update-request.path")
    assert path["Path"]["PathExists"] == "/data/update/request.json"
    assert path["Path"]["Unit"] == "edge-update-request.service"
    assert path["Install"]["WantedBy"] == "paths.target"
    service = read_unit(UNITS / "edge-update-request.service")["Service"]
    assert service["ExecStart"] == "/opt/appliance/bin/appliance update --request"
    assert service["Type"] == "oneshot"


@pytest.mark.parametrize("name", ["edge-update-request.service", "edge-update-usb@.service"])
def test_installers_run_as_root_in_the_host_mount_namespace(name):
    """rauc.service reads the bundle by path: a private mount (ProtectSystem, PrivateTmp,
    PrivateMounts) would hide the stick's mount from it."""
    unit = read_unit(UNITS / name)
    service = unit["Service"]
    assert "User" not in service
    for key in ("ProtectSystem", "PrivateTmp", "PrivateMounts", "ReadOnlyPaths", "ProtectHome"):
        assert key not in service, f"{name}: {key} would give it its own mount namespace"
    assert "/data" in unit["Unit"]["RequiresMountsFor"].split()
    assert "rauc.service" in unit["Unit"]["After"].split()


def test_usb_unit_installs_from_the_device_udev_names():
    unit = read_unit(UNITS / "edge-update-usb@.service")
    assert unit["Service"]["ExecStart"] == "/opt/appliance/bin/appliance update --usb /dev/%I"


def test_udev_rule_matches_usb_filesystems_only_and_wants_the_unit():
    rules = [line for line in RULE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(rules) == 1
    keys = [part.strip() for part in rules[0].split(",")]
    assert set(keys) == {
        'ACTION=="add"', 'SUBSYSTEM=="block"', 'ENV{ID_BUS}=="usb"',
        'ENV{ID_FS_USAGE}=="filesystem"', 'TAG+="systemd"',
        'ENV{SYSTEMD_WANTS}+="edge-update-usb@%k.service"'}
