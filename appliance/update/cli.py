"""`appliance update FILE | status | --request | --usb DEVICE`: install a signed firmware
bundle into the other slot, or show the slots and the last installs.

Installing needs root (RAUC writes the other slot). Exit status as everywhere: 0 installed,
1 the install was refused or failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from appliance.config import loader
from appliance.core.errors import ConfigError
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from appliance.update import history, status
from appliance.update.handoff import BadRequest, remove_upload, take_request
from appliance.update.installer import Installer, Outcome
from appliance.update.paths import UpdatePaths
from appliance.update.rauc import Rauc, RaucError, system_state
from appliance.update.usb import SeveralBundles, StickError, StickMounter, pick_bundle

log = logging.getLogger(__name__)

REBOOT_COMMAND = ("systemctl", "reboot")
BOX_DATA_DIR = Path("/data")
HISTORY_SHOWN = 5


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    update = commands.add_parser(
        "update", parents=[common], help="install a signed firmware bundle (.raucb), or show "
        "the firmware slots", description="Install a signed firmware bundle into the other "
        "slot (as root); it starts at the next reboot. `appliance update status` shows the "
        "slots and the last installs.")
    update.add_argument("file", nargs="?", metavar="FILE|status",
                        help="the bundle to install, or `status`")
    update.add_argument("--reboot", action="store_true",
                        help="reboot into the new firmware once it is installed")
    update.add_argument("--request", action="store_true",
                        help="install the bundle uploaded on the web page "
                             "(run by edge-update-request.service)")
    update.add_argument("--usb", metavar="DEVICE",
                        help="install the bundle on this USB stick, e.g. /dev/sda1 "
                             "(run by edge-update-usb@.service)")


def run(args: argparse.Namespace, rauc: Rauc | None = None, mounter=None) -> int:
    rauc = rauc or Rauc()
    # our own one-line messages say what happened: keep the log records (for the appliance's
    # log when this runs inside it) off the terminal
    log.parent.addHandler(logging.NullHandler())  # the `appliance.update` logger
    chosen = [bool(args.file), args.request, bool(args.usb)]
    if sum(chosen) != 1:
        _error("give one of FILE, status, --request or --usb DEVICE "
               "(e.g. sudo appliance update /media/edge-2.0.raucb)")
        return EXIT_USAGE
    paths = UpdatePaths.in_data_dir(_data_dir(args.config))
    if args.file == "status":
        return show_status(paths, rauc)
    if os.geteuid() != 0:
        how = "sudo appliance update " + (args.file or ("--request" if args.request
                                                       else f"--usb {args.usb}"))
        _error(f"installing firmware needs root (RAUC writes the other slot): run `{how}`")
        return EXIT_USAGE
    installer = Installer(paths, rauc, report=_print_progress)
    try:
        if args.request:
            return _from_request(paths, installer)
        if args.usb:
            return _from_usb(args.usb, installer, mounter or StickMounter())
        bundle = Path(args.file)
        if not bundle.exists():
            _error(f"{bundle}: no such file: check the path")
            return EXIT_USAGE
        outcome = installer.install(bundle, "cli")
    except OSError as exc:
        _error(f"cannot write the update records in {paths.root}: {exc.strerror or exc} "
               "(is the data partition mounted?)")
        return EXIT_FAILED
    return _finish(outcome, args.reboot)


def _from_request(paths: UpdatePaths, installer: Installer) -> int:
    if not paths.request.exists():
        _error(f"no install request waiting ({paths.request} does not exist)")
        return EXIT_FAILED
    try:
        request = take_request(paths)
    except BadRequest as exc:
        return _finish(installer.refuse(paths.request, "web", str(exc)), reboot=False,
                       label="web upload: ")
    try:
        outcome = installer.install(request.file, request.source)
    finally:
        remove_upload(paths, request.file)
    return _finish(outcome, reboot=False, label="web upload: ")


def _from_usb(device: str, installer: Installer, mounter) -> int:
    if not device.startswith("/dev/") or "/../" in device:
        _error(f"--usb {device}: give the stick's device, e.g. /dev/sda1")
        return EXIT_USAGE
    label = f"USB stick {device}: "
    try:
        with mounter.mounted(device) as top:
            try:
                bundle = pick_bundle(top)
            except SeveralBundles as exc:
                outcome = installer.refuse(Path(device), "usb", str(exc))
                return _finish(outcome, reboot=False, label=label)
            if bundle is None:
                print(f"appliance: update: {label}no .raucb bundle in its top directory; "
                      "nothing to install")
                log.info("%sno bundle, nothing to install", label)
                return EXIT_OK
            outcome = installer.install(bundle, "usb")
    except StickError as exc:
        _error(f"{label}{exc}")
        return EXIT_FAILED
    return _finish(outcome, reboot=False, label=label)


def _finish(outcome: Outcome, reboot: bool, label: str = "") -> int:
    if not outcome.ok:
        what = "refused, nothing changed" if outcome.event == "install-refused" else "failed"
        _error(f"{label}{what}: {outcome.message}")
        return EXIT_FAILED
    print(f"appliance: update: {label}{outcome.message}")
    if reboot:
        print("appliance: update: rebooting now", flush=True)
        try:
            subprocess.run(REBOOT_COMMAND, check=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            _error(f"installed, but the reboot failed ({exc}): reboot the box to start it")
            return EXIT_FAILED
    else:
        print("appliance: update: reboot to start it (sudo systemctl reboot)")
    return EXIT_OK


def show_status(paths: UpdatePaths, rauc: Rauc) -> int:
    code = EXIT_OK
    try:
        state = system_state(rauc.status())
    except RaucError as exc:
        print(f"slots: unknown ({exc})")
        code = EXIT_FAILED
    else:
        print(f"booted slot: {state.booted or '?'}   next boot (primary): "
              f"{state.primary or '?'}   compatible: {state.compatible}")
        for slot in state.slots:
            installed = f", installed {slot.installed}" if slot.installed else ""
            print(f"slot {slot.bootname} ({slot.name}): {slot.state}, boot status "
                  f"{slot.boot_status}, version {slot.version or 'unknown'}{installed}")
    try:
        last = status.read(paths.status)
        entries = history.read(paths.history, last=HISTORY_SHOWN)
    except PermissionError:
        print(f"install records: {paths.root} is readable by root and group appliance only")
        return code
    when = f", finished {last.finished}" if last.finished else ""
    source = f" (from {last.source})" if last.source else ""
    print(f"last install: {last.state} {last.percent}%{source}{when}: {last.message}")
    if entries:
        print("history (newest last):")
        for entry in entries:
            print(f"  {history.describe(entry)}")
    return code


def _data_dir(config: str | None) -> Path:
    try:
        return Path(loader.load(config).config.device.data_dir)
    except ConfigError as exc:
        # an update may be what fixes a configuration this firmware cannot read
        fallback = BOX_DATA_DIR if BOX_DATA_DIR.is_dir() else Path("var")
        _error(f"the configuration is not usable ({exc.problems[0]}); using {fallback}")
        return fallback


def _print_progress(percent: int, text: str) -> None:
    print(f"{percent:3d}% {text}", flush=True)


def _error(message: str) -> None:
    print(f"appliance: update: {message}", file=sys.stderr)
