"""`appliance update` against a real RAUC service (tests/update/rauc_box.py): a signed bundle
lands in slot B and becomes primary; a stranger's, a tampered, another device's, an unsigned
bundle and a non-bundle are refused with a clear sentence and leave both slots untouched;
every step is in status.json and history.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from appliance.update import history, status
from appliance.update.handoff import write_request
from tests.update.rauc_box import make_bundle, needs_rauc

pytestmark = needs_rauc


def appliance(box, config_file, *args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "update", "--config", str(config_file), *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, **(box.env if env is None else env)})


def events(paths) -> list[str]:
    return [e["event"] for e in history.read(paths.history)]


def test_a_signed_bundle_is_installed_into_the_other_slot(box, keys, config_file, paths,
                                                          tmp_path):
    payload = os.urandom(96 * 1024)
    bundle = make_bundle(keys, tmp_path / "edge-2.0.0.raucb", "2.0.0", payload=payload)
    slot_a = box.slot_bytes("A")

    result = appliance(box, config_file, str(bundle))

    assert result.returncode == 0, result.stderr
    assert "installed version 2.0.0 into slot B; it starts at the next reboot" in result.stdout
    assert " 40% Verifying signature done." in result.stdout  # progress on the terminal
    assert box.slot_bytes("B")[:len(payload)] == payload
    assert box.slot_bytes("A") == slot_a
    assert box.primary == "B"
    done = status.read(paths.status)
    assert (done.state, done.percent, done.source) == ("succeeded", 100, "cli")
    assert done.file == str(bundle) and done.finished
    entries = history.read(paths.history)
    assert [e["event"] for e in entries] == ["install-started", "installed"]
    assert entries[1]["slot"] == "B" and entries[1]["version"] == "2.0.0"
    assert entries[1]["source"] == "cli"


@pytest.mark.parametrize("kind, expected", [
    ("stranger", "not signed by a key this box trusts"),
    ("tampered", "corrupt or was changed after it was signed"),
    ("foreign", "for another device: it is for 'some-other-box', this box takes "
                "'edge-appliance-test'"),
    ("junk", "not a firmware bundle"),
    ("unsigned", "the bundle is not signed"),
])
def test_a_bad_bundle_is_refused_and_nothing_changes(box, keys, config_file, paths, tmp_path,
                                                     kind, expected):
    target = tmp_path / f"{kind}.raucb"
    if kind == "stranger":
        make_bundle(keys, target, stranger=True)
    elif kind == "foreign":
        make_bundle(keys, target, compatible="some-other-box")
    elif kind == "tampered":
        make_bundle(keys, target)
        data = bytearray(target.read_bytes())
        data[len(data) // 3] ^= 0xFF  # one bit pattern inside the signed image
        target.write_bytes(bytes(data))
    elif kind == "unsigned":  # a bundle's squashfs without the signature after it
        content = tmp_path / "unsigned"
        content.mkdir()
        (content / "rootfs.img").write_bytes(os.urandom(64 * 1024))
        (content / "manifest.raucm").write_text(
            "[update]\ncompatible=edge-appliance-test\nversion=9\n\n"
            "[image.rootfs]\nfilename=rootfs.img\n")
        subprocess.run(["mksquashfs", str(content), str(target), "-all-root", "-noappend",
                        "-quiet", "-no-progress"], check=True, capture_output=True)
    else:
        target.write_bytes(b"hsqs" + os.urandom(8000))
    before = {name: box.slot_bytes(name) for name in "AB"}

    result = appliance(box, config_file, str(target))

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("appliance: update: refused, nothing changed: ")
    assert expected in lines[0]
    assert {name: box.slot_bytes(name) for name in "AB"} == before
    assert box.primary == "A"
    assert events(paths) == ["install-started", "install-refused"]
    assert expected in history.read(paths.history)[-1]["reason"]
    failed = status.read(paths.status)
    assert failed.state == "failed" and expected in failed.message


def test_status_shows_the_slots_and_the_last_install(box, keys, config_file, tmp_path):
    bundle = make_bundle(keys, tmp_path / "edge-3.1.raucb", "3.1")
    assert appliance(box, config_file, str(bundle)).returncode == 0

    result = appliance(box, config_file, "status")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "booted slot: A" in out and "next boot (primary): B" in out
    assert "slot B (rootfs.1): inactive" in out and "version 3.1" in out
    assert "last install: succeeded 100% (from cli)" in out
    assert "installed slot B 3.1 (cli)" in out


def test_the_web_hand_off_installs_the_upload_and_removes_it(box, keys, config_file, paths):
    paths.incoming.mkdir(parents=True)
    upload = make_bundle(keys, paths.incoming / "edge-2.5.raucb", "2.5")
    os.chown(upload, 65534, 65534)  # written by the web process, not by root
    upload.chmod(0o640)
    write_request(paths, upload, "web")

    result = appliance(box, config_file, "--request")

    assert result.returncode == 0, result.stderr
    assert "web upload: installed version 2.5 into slot B" in result.stdout
    assert not paths.request.exists() and not upload.exists()
    last = history.read(paths.history)[-1]
    assert (last["event"], last["source"], last["version"]) == ("installed", "web", "2.5")
    assert box.primary == "B"


def test_a_refused_upload_is_deleted_too(box, keys, config_file, paths):
    paths.incoming.mkdir(parents=True)
    upload = make_bundle(keys, paths.incoming / "stranger.raucb", stranger=True)
    write_request(paths, upload, "web")

    result = appliance(box, config_file, "--request")

    assert result.returncode == 1
    assert "not signed by a key this box trusts" in result.stderr
    assert not upload.exists() and not paths.request.exists()
    assert status.read(paths.status).source == "web"


def test_without_the_rauc_service_the_message_says_so(box, keys, config_file, paths,
                                                      tmp_path):
    bundle = make_bundle(keys, tmp_path / "edge.raucb")
    gone = {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}"}

    result = appliance(box, config_file, str(bundle), env=gone)

    assert result.returncode == 1
    assert "the RAUC update service is not running" in result.stderr
    assert events(paths)[-1] == "install-failed"
    assert json.loads(paths.status.read_text())["state"] == "failed"


def test_reboot_right_after_a_successful_install(box, keys, config_file, tmp_path,
                                                 monkeypatch, capsys):
    from appliance.update import cli as update_cli

    marker = tmp_path / "rebooted"
    monkeypatch.setattr(update_cli, "REBOOT_COMMAND",
                        ("sh", "-c", f"echo yes > {marker}"))  # stands in for systemctl reboot
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    bundle = make_bundle(keys, tmp_path / "edge-2.0.raucb")
    from appliance.cli import main

    assert main(["update", "--config", str(config_file), str(bundle), "--reboot"]) == 0
    assert "rebooting now" in capsys.readouterr().out
    assert marker.read_text() == "yes\n"


def test_no_reboot_when_the_install_fails(box, keys, config_file, tmp_path, monkeypatch):
    from appliance.update import cli as update_cli

    marker = tmp_path / "rebooted"
    monkeypatch.setattr(update_cli, "REBOOT_COMMAND", ("sh", "-c", f"echo yes > {marker}"))
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    bundle = make_bundle(keys, tmp_path / "stranger.raucb", stranger=True)
    from appliance.cli import main

    assert main(["update", "--config", str(config_file), str(bundle), "--reboot"]) == 1
    assert not marker.exists()
