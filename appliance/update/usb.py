"""Updates from a USB stick: `edge-update-usb@.service` (started by a udev rule when a stick
with a filesystem appears) runs `appliance update --usb /dev/DEVICE`.

The stick is mounted read-only, without devices, set-uid or programs
(`ro,nosuid,nodev,noexec`) in a fresh private directory, and always unmounted afterwards.
The bundle is the one `*.raucb` file in the stick's top directory: none means the stick is
not an update stick (logged, nothing else happens); several are refused with their names, so
a technician never gets a version by surprise.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.update.installer import BUNDLE_SUFFIX

log = logging.getLogger(__name__)

MOUNT_OPTIONS = "ro,nosuid,nodev,noexec"
MOUNT_BASE = Path("/run")


class StickError(ApplianceError, OSError):
    """The stick could not be mounted or read."""


class SeveralBundles(ApplianceError, ValueError):
    """More than one bundle on the stick: which one to install is the technician's choice."""

    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(f"{len(names)} bundles on the USB stick ({', '.join(names)}): "
                         "leave exactly one .raucb file in its top directory")


def pick_bundle(top: Path) -> Path | None:
    """The one bundle in `top` (not in subdirectories); None if there is none."""
    try:
        entries = list(top.iterdir())
    except OSError as exc:
        raise StickError(f"cannot read the USB stick: {exc.strerror or exc}") from None
    # "._name.raucb" files are macOS metadata, not bundles
    bundles = sorted(p for p in entries if p.name.lower().endswith(BUNDLE_SUFFIX)
                     and not p.name.startswith(".") and p.is_file() and not p.is_symlink())
    if len(bundles) > 1:
        raise SeveralBundles([p.name for p in bundles])
    return bundles[0] if bundles else None


class StickMounter:
    """Mounts a block device read-only for the duration of a `with` block."""

    def __init__(self, base: Path = MOUNT_BASE, run=subprocess.run):
        self.base = base
        self.run = run

    @contextmanager
    def mounted(self, device: str) -> Iterator[Path]:
        where = Path(tempfile.mkdtemp(prefix="edge-update-usb.", dir=self.base))
        try:
            result = self.run(["mount", "-o", MOUNT_OPTIONS, device, str(where)],
                              capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                reason = (result.stderr or result.stdout).strip().splitlines()
                raise StickError(f"cannot mount {device}: "
                                 f"{reason[-1] if reason else 'mount failed'}")
            try:
                yield where
            finally:
                self._unmount(device, where)
        finally:
            try:
                where.rmdir()
            except OSError as exc:
                log.error("cannot remove the mount point %s: %s", where, exc.strerror)

    def _unmount(self, device: str, where: Path) -> None:
        result = self.run(["umount", str(where)], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            # still busy (or the stick was pulled): detach it so the directory goes away
            log.warning("umount %s failed (%s); detaching it", device, result.stderr.strip())
            self.run(["umount", "--lazy", str(where)], capture_output=True, text=True,
                     timeout=60)

