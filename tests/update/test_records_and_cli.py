"""The installer's records and its command line without RAUC: history and status files, the
web hand-off's safety checks, RAUC's words turned into sentences, usage errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.update import history, status
from appliance.update.handoff import (
    BadRequest,
    take_request,
    upload_name,
    write_request,
)
from appliance.update.rauc import PROGRESS, Rauc, explain, system_state


def test_history_appends_lines_and_skips_what_it_cannot_read(paths):
    history.append(paths.history, "install-started", slot="B", source="cli", reason="file x")
    with open(paths.history, "a") as stream:
        stream.write('{"time": "2026-01-01T00:00:00Z", "ev\n')  # cut off by a power loss
        stream.write("not json at all\n[1, 2]\n")
    history.append(paths.history, "installed", slot="B", version="2.0", source="cli")
    entries = history.read(paths.history)
    assert [e["event"] for e in entries] == ["install-started", "installed"]
    assert set(entries[1]) == {"time", "event", "slot", "version", "source", "reason"}
    assert entries[1]["time"].endswith("Z")
    assert history.read(paths.history, last=1) == entries[1:]
    assert history.describe(entries[1]).endswith("installed slot B 2.0 (cli)")


def test_history_refuses_names_outside_the_contract(paths):
    with pytest.raises(ValueError, match="unknown update event"):
        history.append(paths.history, "exploded")
    with pytest.raises(ValueError, match="unknown update source"):
        history.append(paths.history, "installed", source="ftp")


def test_status_is_replaced_whole_and_readable_by_the_web_group(paths):
    status.write(paths.status, status.InstallStatus(state="installing", percent=40,
                                                    source="web", file="/x.raucb",
                                                    started="2026-01-01T00:00:00Z"))
    data = json.loads(paths.status.read_text())
    assert data == {"state": "installing", "percent": 40, "message": status.InstallStatus()
                    .message, "source": "web", "file": "/x.raucb",
                    "started": "2026-01-01T00:00:00Z", "finished": None}
    assert stat.S_IMODE(paths.status.stat().st_mode) == 0o640
    assert [p.name for p in paths.root.iterdir()] == ["status.json"]  # no temp file left
    paths.status.write_text("{broken")
    assert status.read(paths.status).state == "idle"


def test_rauc_progress_lines_are_parsed():
    assert PROGRESS.match(" 40% Verifying signature done.").groups() == (
        "40", "Verifying signature done.")
    assert PROGRESS.match("100% Installing failed.").group(1) == "100"
    assert PROGRESS.match("LastError: x") is None


def test_progress_reaches_the_callback_from_rauc_output(tmp_path):
    # RAUC 1.8's `rauc install` output, replayed, to check the parser alone
    fake = tmp_path / "rauc"
    fake.write_text("#!/bin/sh\necho installing\necho '  0% Installing'\n"
                    "echo ' 20% Checking bundle'\necho ' 40% Verifying signature failed.'\n"
                    "echo '100% Installing failed.'\necho 'LastError: signature verification "
                    "failed: Verify error: self-signed certificate'\necho idle\n"
                    "echo 'Installing `/x.raucb` failed'\nexit 1\n")
    fake.chmod(0o755)
    seen = []
    result = Rauc([str(fake)]).install(Path("/x.raucb"), lambda p, t: seen.append((p, t)))
    assert not result.ok
    assert seen[1] == (20, "Checking bundle") and seen[-1] == (100, "Installing failed.")
    assert result.error == "signature verification failed: Verify error: self-signed certificate"
    assert result.verdict.refused


@pytest.mark.parametrize("error, refused, sentence", [
    ("signature verification failed: Verify error: self-signed certificate", True,
     "not signed by a key this box trusts"),
    ("signature verification failed: Verify error: unable to get local issuer certificate",
     True, "not signed by a key this box trusts"),
    ("signature verification failed: error:1700009E:CMS routines::verification failure", True,
     "corrupt or was changed after it was signed"),
    ("Installation error: Compatible mismatch: Expected 'edge' but bundle manifest has 'cam'",
     True, "for another device: it is for 'cam', this box takes 'edge'"),
    ("Invalid bundle format: Signature size (17111752128790476533) exceeds bundle size", True,
     "not a firmware bundle"),
    ("No such file: /tmp/x.raucb", True, "does not exist"),
    ("Installation error: Failed to run pre-install handler: Pre-install handler error: "
     "Child process exited with code 3", True, "corrupt or was changed after it was signed"),
    ("Installation error: Pre-install handler error: Child process exited with code 4", True,
     "running newly installed firmware on trial"),
    ("Pre-install handler error: Child process exited with code 1", False,
     "the update failed"),
    ("GDBus.Error:org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code30: "
     "Already processing a different method", False, "another update is being installed"),
    ("Error creating proxy: Could not connect: No such file or directory", False,
     "RAUC update service is not running"),
    ("Failed writing image: No space left on device", False, "not enough space"),
    ("something new", False, "the update failed: something new"),
])
def test_rauc_errors_become_sentences(error, refused, sentence):
    verdict = explain(error)
    assert verdict.refused is refused
    assert sentence in verdict.reason


def test_slot_state_names_the_primary_by_bootname():
    state = system_state({"compatible": "c", "booted": "A", "boot_primary": "rootfs.1",
                          "slots": [{"rootfs.1": {"class": "rootfs", "bootname": "B",
                                                  "state": "inactive", "boot_status": "good",
                                                  "slot_status": {"bundle": {"version": "2"}}}},
                                    {"rootfs.0": {"class": "rootfs", "bootname": "A",
                                                  "state": "booted"}}]})
    assert state.primary == "B" and state.other.bootname == "B"
    assert [s.bootname for s in state.slots] == ["A", "B"] and state.slot("B").version == "2"


# -- the web hand-off ------------------------------------------------------------------------


def test_upload_names_are_tidied():
    assert upload_name("../../etc/passwd.raucb") == "passwd.raucb"
    assert upload_name("C:\\stick\\edge 2.0 (final).RAUCB") == "edge_2.0_final.raucb"
    assert upload_name(".raucb") == "bundle.raucb"


def test_a_request_is_taken_once(paths):
    paths.incoming.mkdir(parents=True)
    upload = paths.incoming / "edge.raucb"
    upload.write_bytes(b"hsqs")
    write_request(paths, upload)
    request = take_request(paths)
    assert request.file == upload and request.source == "web" and request.requested
    assert not paths.request.exists()
    with pytest.raises(BadRequest, match="no install request"):
        take_request(paths)


@pytest.mark.parametrize("name, why", [
    ("/etc/shadow", "not in"),
    ("../history.jsonl", "not in"),
    ("notes.txt", "not a .raucb bundle"),
    ("missing.raucb", "is gone"),
    ("link.raucb", "not a plain file"),
])
def test_a_request_for_anything_but_an_upload_is_refused(paths, name, why):
    paths.incoming.mkdir(parents=True)
    (paths.incoming / "notes.txt").write_text("x")
    os.symlink("/etc/passwd", paths.incoming / "link.raucb")
    paths.request.write_text(json.dumps({"file": name, "source": "web"}))
    with pytest.raises(BadRequest, match=why):
        take_request(paths)
    assert not paths.request.exists()  # never taken twice
    assert Path("/etc/passwd").exists()


def test_a_malformed_request_is_refused_and_removed(paths):
    paths.root.mkdir(parents=True)
    paths.request.write_text("{not json")
    with pytest.raises(BadRequest, match="not JSON"):
        take_request(paths)
    assert not paths.request.exists()


def test_a_bad_request_is_recorded_for_the_web_page(paths, config_file, capsys):
    paths.root.mkdir(parents=True)
    paths.request.write_text(json.dumps({"file": "/etc/shadow"}))
    assert main(["update", "--config", str(config_file), "--request"]) == 1
    assert "web upload: refused, nothing changed: the install request names '/etc/shadow'" \
        in capsys.readouterr().err
    assert status.read(paths.status).state == "failed"
    assert history.read(paths.history)[-1]["event"] == "install-refused"


# -- the command line ------------------------------------------------------------------------


def test_installing_needs_root(config_file, tmp_path, monkeypatch, capsys):
    bundle = tmp_path / "edge.raucb"
    bundle.write_bytes(b"hsqs")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["update", "--config", str(config_file), str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("appliance: update: installing firmware needs root (RAUC writes the other "
                   f"slot): run `sudo appliance update {bundle}`")


def test_a_missing_file_is_a_usage_error(config_file, paths, capsys):
    assert main(["update", "--config", str(config_file), "/nonexistent/edge.raucb"]) == 2
    assert capsys.readouterr().err.strip() == (
        "appliance: update: /nonexistent/edge.raucb: no such file: check the path")
    assert not paths.history.exists()


@pytest.mark.parametrize("name, content, why", [
    ("empty.raucb", b"", "the file is empty"),
    ("edge.tar.gz", b"hsqs", "not a firmware bundle (the name must end in .raucb)"),
])
def test_obviously_wrong_files_are_refused_before_rauc(tmp_path, config_file, paths, capsys,
                                                       name, content, why):
    bundle = tmp_path / name
    bundle.write_bytes(content)
    assert main(["update", "--config", str(config_file), str(bundle)]) == 1
    assert why in capsys.readouterr().err
    assert history.read(paths.history)[-1]["event"] == "install-refused"


def test_one_install_path_at_a_time(config_file, capsys):
    assert main(["update", "--config", str(config_file)]) == 2
    assert main(["update", "--config", str(config_file), "x.raucb", "--usb", "/dev/sda"]) == 2
    assert "give one of FILE, status, --request or --usb DEVICE" in capsys.readouterr().err


def test_the_command_line_runs_without_a_traceback():
    result = subprocess.run([sys.executable, "-m", "appliance", "update", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--usb DEVICE" in result.stdout


def test_a_second_install_waits_for_none_and_leaves_the_first_ones_status(paths, tmp_path):
    import fcntl

    from appliance.update.installer import Installer

    bundle = tmp_path / "edge.raucb"
    bundle.write_bytes(b"hsqs")
    paths.root.mkdir(parents=True)
    running = status.InstallStatus(state="installing", percent=60, source="usb")
    status.write(paths.status, running)
    with open(paths.root / ".install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the install from the USB stick, still running
        outcome = Installer(paths, Rauc(["false"])).install(bundle, "cli")
    assert not outcome.ok and outcome.event == "install-failed"
    assert "another update is being installed right now" in outcome.message
    assert status.read(paths.status) == running
    assert history.read(paths.history)[-1]["event"] == "install-failed"
