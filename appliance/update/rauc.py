"""The one place that runs RAUC: `rauc install` with its progress, `rauc status` as JSON, and
RAUC's error text turned into a sentence a technician can act on.

RAUC 1.8 (Debian bookworm) prints, for `rauc install FILE`, the operation ("installing",
"idle"), one line per step (` 40% Checking bundle done.`), `LastError: ...` when a step
failed, and finally "Installing `FILE` succeeded" or "... failed"; errors before the D-Bus
call come alone (`No such file: FILE`, `D-Bus error while installing ...`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

PROGRESS = re.compile(r"^\s*(\d{1,3})%\s+(.*?)\s*$")
LAST_ERROR = re.compile(r"^LastError:\s*(.*?)\s*$")
COMPATIBLE = re.compile(r"Compatible mismatch: Expected '([^']*)' but bundle manifest has "
                        r"'([^']*)'")

ProgressCallback = Callable[[int, str], None]


class RaucError(ApplianceError, RuntimeError):
    """RAUC could not be asked (not installed, service down); the message says why."""


@dataclass(frozen=True)
class Verdict:
    """Why an install did not happen: `refused` when the bundle itself was not acceptable
    (nothing was written), else it failed on the way."""

    refused: bool
    reason: str


@dataclass(frozen=True)
class InstallResult:
    ok: bool
    error: str = ""  # RAUC's own words (the last error line)
    output: str = ""

    @property
    def verdict(self) -> Verdict:
        return explain(self.error)


# (pattern in RAUC's error text, refused?, sentence); the first match wins.
_EXPLANATIONS: list[tuple[re.Pattern, bool, str]] = [
    # the image's pre-install handler (image/overlay/usr/lib/edge-appliance/rauc-pre-install):
    # RAUC passes on only its exit status
    (re.compile(r"Pre-install handler error: .*\bcode 3\b", re.I), True,
     "the bundle is corrupt or was changed after it was signed (its contents do not match "
     "the signature): copy it again from the original"),
    (re.compile(r"Pre-install handler error: .*\bcode 4\b", re.I), True,
     "the box is running newly installed firmware on trial: wait until it is marked good "
     "(`appliance update status`, a few minutes after start-up), then install again"),
    (re.compile(r"^No such file: ", re.I), True,
     "the bundle file does not exist: check the path and copy the file again"),
    (re.compile(r"already processing|rauc busy", re.I), False,
     "another update is being installed right now: wait for it to finish, then try again"),
    (re.compile(r"Could not connect|error creating proxy|ServiceUnknown|was not provided by "
                r"any|RAUC service disappeared", re.I), False,
     "the RAUC update service is not running: check `systemctl status rauc` and try again"),
    (re.compile(r"expired|not yet valid|certificate is not yet", re.I), True,
     "the bundle's signing certificate is expired or not yet valid: check the box's clock "
     "(`timedatectl`) or get a freshly signed bundle"),
    (re.compile(r"Verify error|unable to get (local )?issuer|self.signed certificate|"
                r"certificate verify|key usage|untrusted|no keyring", re.I), True,
     "the bundle is not signed by a key this box trusts: use a bundle signed with the "
     "release key (its certificate must chain to the box's keyring)"),
    (re.compile(r"Signature size is 0|no signature|not signed", re.I), True,
     "the bundle is not signed: only signed bundles are installed"),
    (re.compile(r"CMS routines|verification failure|digest|hash|checksum|verity|"
                r"Input/output error", re.I), True,
     "the bundle is corrupt or was changed after it was signed: copy it again from the "
     "original"),
    (re.compile(r"Invalid bundle format|Failed to seek|exceeds bundle size|bad magic|"
                r"squashfs|not a (valid )?bundle", re.I), True,
     "the file is not a firmware bundle (.raucb) or is truncated: copy it again"),
    (re.compile(r"No space left|too small|not enough space|larger than", re.I), False,
     "not enough space for the new firmware: the bundle's image is bigger than the slot, "
     "or the data partition is full"),
]


def explain(error: str) -> Verdict:
    """RAUC's error text as a sentence (with RAUC's words kept at the end for support)."""
    error = " ".join(error.split())
    match = COMPATIBLE.search(error)
    if match:
        return Verdict(True, f"the bundle is for another device: it is for '{match.group(2)}', "
                             f"this box takes '{match.group(1)}'")
    for pattern, refused, sentence in _EXPLANATIONS:
        if pattern.search(error):
            return Verdict(refused, f"{sentence} (RAUC: {error})")
    return Verdict(False, f"the update failed: {error or 'RAUC gave no reason'}")


class Rauc:
    """Runs the `rauc` command line (which talks to `rauc.service` over D-Bus)."""

    def __init__(self, command: Sequence[str] = ("rauc",), env: dict[str, str] | None = None):
        self.command = list(command)
        self.env = env

    def install(self, bundle: Path, on_progress: ProgressCallback | None = None,
                timeout: float = 3600.0) -> InstallResult:
        """Install `bundle` into the other slot, calling `on_progress(percent, text)` per
        step. Never raises for a refused bundle: the result says why."""
        try:
            process = subprocess.Popen(
                [*self.command, "install", str(bundle)], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
                env=self._env())
        except OSError as exc:
            return InstallResult(False, f"cannot run {self.command[0]}: {exc.strerror or exc}")
        lines: list[str] = []
        error = ""
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            progress = PROGRESS.match(line)
            if progress:
                if on_progress is not None:
                    on_progress(min(100, int(progress.group(1))), progress.group(2))
                continue
            last = LAST_ERROR.match(line)
            if last:
                error = last.group(1)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            error = error or f"rauc install did not finish within {timeout:.0f} s"
        output = "\n".join(lines)
        if code == 0:
            return InstallResult(True, "", output)
        if not error:
            error = _first_error_line(lines) or f"rauc install exited with status {code}"
        return InstallResult(False, error, output)

    def status(self) -> dict:
        """`rauc status --detailed --output-format=json`, parsed."""
        try:
            result = subprocess.run(
                [*self.command, "status", "--detailed", "--output-format=json"],
                capture_output=True, text=True, timeout=60, env=self._env(),
                stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise RaucError(f"cannot run {self.command[0]}: {exc.strerror or exc} "
                            "(is the rauc package installed?)") from None
        except subprocess.TimeoutExpired:
            raise RaucError("rauc status did not answer within 60 s") from None
        # RAUC prints the JSON on stdout and warnings (e.g. no primary from a bootloader)
        # on stderr; the JSON is the first line that parses.
        for line in result.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    break
        problem = _first_error_line(result.stderr.splitlines() + result.stdout.splitlines())
        raise RaucError(f"rauc status failed: {problem or 'no answer'}")

    def _env(self) -> dict[str, str] | None:
        if self.env is None:
            return None
        return {**os.environ, **self.env}


def _first_error_line(lines: list[str]) -> str:
    for line in lines:
        text = line.strip()
        if not text or text in ("installing", "idle") or PROGRESS.match(text):
            continue
        if text.startswith("Installing `") or text.startswith("rauc-Message"):
            continue
        return re.sub(r"^\(rauc:\d+\): rauc-WARNING \*\*: [\d:.]+: ", "", text)
    return ""


@dataclass(frozen=True)
class SlotInfo:
    """One root filesystem slot as `rauc status` sees it."""

    bootname: str
    name: str
    state: str  # booted, active, inactive
    boot_status: str  # good, bad (from the bootloader)
    version: str | None
    installed: str | None  # ISO time of the last install into it


@dataclass(frozen=True)
class SystemState:
    compatible: str
    booted: str | None
    primary: str | None
    slots: list[SlotInfo]

    def slot(self, bootname: str | None) -> SlotInfo | None:
        return next((s for s in self.slots if s.bootname == bootname), None)

    @property
    def other(self) -> SlotInfo | None:
        """The slot an install writes to (the one not booted)."""
        return next((s for s in self.slots if s.bootname != self.booted), None)


def system_state(data: dict) -> SystemState:
    """The parts of `rauc status --detailed` JSON an update needs (rootfs slots only)."""
    slots = []
    for entry in data.get("slots") or []:
        for name, slot in entry.items():
            if slot.get("class") != "rootfs" or not slot.get("bootname"):
                continue
            status = slot.get("slot_status") or {}
            slots.append(SlotInfo(
                bootname=slot["bootname"], name=name, state=slot.get("state") or "?",
                boot_status=slot.get("boot_status") or "?",
                version=(status.get("bundle") or {}).get("version"),
                installed=(status.get("installed") or {}).get("timestamp")))
    slots.sort(key=lambda s: s.bootname)
    # boot_primary names the slot (rootfs.1), booted its bootname (B): say both as bootnames
    primary = data.get("boot_primary")
    primary = next((s.bootname for s in slots if s.name == primary), primary)
    return SystemState(data.get("compatible") or "", data.get("booted"), primary, slots)
