"""Updates from a USB stick: which file is the bundle, the read-only mount, and the install
through a real RAUC with a directory standing in for the mounted stick."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance.update import cli as update_cli
from appliance.update import history, status
from appliance.update.rauc import Rauc
from appliance.update.usb import SeveralBundles, StickError, StickMounter, pick_bundle
from tests.update.rauc_box import make_bundle, needs_rauc


class DirectoryStick:
    """Stands in for StickMounter: `mounted(device)` yields a directory; records calls."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.devices: list[str] = []
        self.unmounted = 0

    @contextmanager
    def mounted(self, device: str):
        self.devices.append(device)
        try:
            yield self.directory
        finally:
            self.unmounted += 1


def usb_args(config_file: Path, device: str = "/dev/sda1") -> argparse.Namespace:
    return argparse.Namespace(file=None, request=False, usb=device, reboot=False,
                              config=str(config_file))


def test_the_single_bundle_in_the_top_directory_is_picked(tmp_path):
    (tmp_path / "edge-2.0.raucb").write_bytes(b"x")
    (tmp_path / "._edge-2.0.raucb").write_bytes(b"mac metadata")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "edge-1.0.raucb").write_bytes(b"x")
    assert pick_bundle(tmp_path) == tmp_path / "edge-2.0.raucb"


def test_a_stick_without_a_bundle_has_nothing_to_install(tmp_path):
    (tmp_path / "images.zip").write_bytes(b"x")
    (tmp_path / "dir.raucb").mkdir()
    assert pick_bundle(tmp_path) is None


def test_several_bundles_are_refused_naming_them(tmp_path):
    for name in ("edge-2.0.raucb", "edge-2.1.RAUCB"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(SeveralBundles) as caught:
        pick_bundle(tmp_path)
    assert "edge-2.0.raucb, edge-2.1.RAUCB" in str(caught.value)
    assert "leave exactly one .raucb file" in str(caught.value)


def test_several_bundles_are_recorded_and_nothing_is_installed(tmp_path, config_file, paths,
                                                               capsys):
    stick = tmp_path / "stick"
    stick.mkdir()
    for name in ("a.raucb", "b.raucb"):
        (stick / name).write_bytes(b"hsqs")
    mounter = DirectoryStick(stick)

    code = update_cli.run(usb_args(config_file), rauc=Rauc(["false"]), mounter=mounter)

    assert code == 1
    assert "USB stick /dev/sda1: refused, nothing changed: 2 bundles on the USB stick " \
           "(a.raucb, b.raucb)" in capsys.readouterr().err
    assert mounter.unmounted == 1
    last = history.read(paths.history)[-1]
    assert (last["event"], last["source"]) == ("install-refused", "usb")
    assert status.read(paths.status).state == "failed"


def test_a_stick_without_a_bundle_changes_nothing(tmp_path, config_file, paths, capsys):
    stick = tmp_path / "stick"
    stick.mkdir()
    code = update_cli.run(usb_args(config_file), rauc=Rauc(["false"]),
                          mounter=DirectoryStick(stick))
    assert code == 0
    assert "no .raucb bundle in its top directory; nothing to install" in capsys.readouterr().out
    assert not paths.history.exists() and not paths.status.exists()


def test_only_a_device_path_is_taken(config_file, capsys):
    code = update_cli.run(usb_args(config_file, "sda1"), rauc=Rauc(["false"]),
                          mounter=DirectoryStick(Path("/nonexistent")))
    assert code == 2
    assert "give the stick's device, e.g. /dev/sda1" in capsys.readouterr().err


@needs_rauc
def test_the_bundle_on_the_stick_is_installed(box, keys, tmp_path, config_file, paths,
                                              monkeypatch, capsys):
    stick = tmp_path / "stick"
    stick.mkdir()
    make_bundle(keys, stick / "edge-4.0.raucb", "4.0")
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    mounter = DirectoryStick(stick)

    code = update_cli.run(usb_args(config_file, "/dev/sdb1"), mounter=mounter)

    assert code == 0, capsys.readouterr().err
    assert "USB stick /dev/sdb1: installed version 4.0 into slot B" in capsys.readouterr().out
    assert mounter.devices == ["/dev/sdb1"] and mounter.unmounted == 1
    last = history.read(paths.history)[-1]
    assert (last["event"], last["source"], last["slot"]) == ("installed", "usb", "B")
    assert box.primary == "B"
    assert (stick / "edge-4.0.raucb").exists()  # the stick is only read


def _can_loop_mount() -> str:
    if os.geteuid() != 0:
        return "mounting needs root"
    if not shutil.which("mkfs.ext4"):
        return "e2fsprogs is not installed"
    return ""


@pytest.mark.skipif(bool(_can_loop_mount()), reason=_can_loop_mount() or "ok")
def test_a_real_stick_is_mounted_read_only_and_always_unmounted(tmp_path):
    # ext4 rather than FAT: the test host's kernel may lack vfat; mount is the same code path
    content = tmp_path / "content"
    content.mkdir()
    (content / "edge-5.0.raucb").write_bytes(b"hsqs bundle")
    image = tmp_path / "stick.img"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(content), str(image), "4M"], check=True,
                   capture_output=True)
    base = tmp_path / "run"
    base.mkdir()
    mounter = StickMounter(base=base)
    try:
        with mounter.mounted(str(image)) as top:
            options = next(line.split()[3] for line in Path("/proc/mounts").read_text()
                           .splitlines() if line.split()[1] == str(top))
            assert {"ro", "nosuid", "nodev", "noexec"} <= set(options.split(","))
            assert pick_bundle(top).read_bytes() == b"hsqs bundle"
            with pytest.raises(OSError):
                (top / "new-file").write_text("x")
            raise KeyError("something went wrong while installing")
    except StickError as exc:
        pytest.skip(f"cannot loop-mount here: {exc}")
    except KeyError:
        pass
    assert list(base.iterdir()) == []  # unmounted and the mount point removed
    assert str(base) not in Path("/proc/mounts").read_text()


def test_a_stick_that_cannot_be_mounted_says_why(tmp_path):
    with pytest.raises(StickError, match="cannot mount /dev/nonexistent-stick"):
        with StickMounter(base=tmp_path).mounted("/dev/nonexistent-stick"):
            pass
    assert list(tmp_path.iterdir()) == []


@needs_rauc
@pytest.mark.skipif(bool(_can_loop_mount()), reason=_can_loop_mount() or "ok")
def test_a_stick_with_a_bundle_is_mounted_installed_and_unmounted(box, keys, tmp_path,
                                                                  config_file, paths,
                                                                  monkeypatch, capsys):
    content = tmp_path / "content"
    content.mkdir()
    make_bundle(keys, content / "edge-6.0.raucb", "6.0")
    image = tmp_path / "stick.img"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(content), str(image), "8M"], check=True,
                   capture_output=True)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True,
                            text=True)
    if device.returncode != 0:
        pytest.skip(f"no loop device: {device.stderr.strip()}")
    device = device.stdout.strip()
    base = tmp_path / "run"
    base.mkdir()
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    try:
        code = update_cli.run(usb_args(config_file, device), mounter=StickMounter(base=base))
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True)
    assert code == 0, capsys.readouterr().err
    assert f"USB stick {device}: installed version 6.0 into slot B" in capsys.readouterr().out
    assert box.primary == "B"
    assert list(base.iterdir()) == []
    assert history.read(paths.history)[-1]["source"] == "usb"
