"""The web page's hand-off to the root installer.

The web process (user `appliance`, strict sandbox) cannot run RAUC. It writes the upload to
`<update>/incoming/<name>.raucb`, then atomically creates `<update>/request.json`
{"file": path, "source": "web", "requested": ISO}; the path unit `edge-update-request.path`
starts `appliance update --request` as root, which takes the request (removing it first, so
a bad one never loops) and installs the file.

The request comes from a less trusted process, so the root side only accepts a plain file
directly inside `incoming/` with a .raucb name, and only ever deletes that file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.system.atomic_file import write_atomically
from appliance.update import history
from appliance.update.installer import BUNDLE_SUFFIX
from appliance.update.paths import UpdatePaths

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096


class BadRequest(ApplianceError, ValueError):
    """request.json is missing, unreadable or names a file the installer must not touch."""


@dataclass(frozen=True)
class Request:
    file: Path
    source: str
    requested: str | None


def upload_name(filename: str) -> str:
    """A safe file name in incoming/ for an uploaded bundle (the browser's name, tidied)."""
    stem = Path(filename.replace("\\", "/")).name
    stem = stem[: -len(BUNDLE_SUFFIX)] if stem.lower().endswith(BUNDLE_SUFFIX) else stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "bundle"
    return f"{stem}{BUNDLE_SUFFIX}"


def write_request(paths: UpdatePaths, file: Path, source: str = "web") -> dict:
    """Ask the root installer to install `file` (already inside incoming/)."""
    body = {"file": str(file), "source": source, "requested": history.utc_now()}
    write_atomically(paths.request, (json.dumps(body) + "\n").encode("utf-8"), mode=0o644)
    log.info("install of %s requested from the %s", file.name, source)
    return body


def take_request(paths: UpdatePaths) -> Request:
    """Read and remove request.json; raise BadRequest (after removing it) if it is unusable."""
    try:
        fd = os.open(paths.request, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadRequest(f"no install request ({paths.request} does not exist)") from None
    except OSError as exc:
        _remove(paths.request)
        raise BadRequest(f"cannot read {paths.request}: {exc.strerror}") from None
    try:
        raw = os.read(fd, MAX_REQUEST_BYTES + 1)
    finally:
        os.close(fd)
        _remove(paths.request)
    if len(raw) > MAX_REQUEST_BYTES:
        raise BadRequest(f"{paths.request} is too big to be an install request")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest(f"{paths.request} is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("file"), str):
        raise BadRequest(f"{paths.request} names no file")
    source = body.get("source") if body.get("source") in history.SOURCES else "web"
    return Request(checked_upload(paths, body["file"]), source, body.get("requested"))


def checked_upload(paths: UpdatePaths, name: str) -> Path:
    """The uploaded bundle `name` refers to, if it is a plain .raucb file directly inside
    incoming/ (no symlink, no other directory); else BadRequest."""
    incoming = paths.incoming.absolute()
    candidate = Path(name)
    if not candidate.is_absolute():
        candidate = incoming / candidate
    if candidate.parent != incoming or candidate.name in ("", ".", ".."):
        raise BadRequest(f"the install request names {name!r}, which is not in {incoming}: "
                         "refused")
    if not candidate.name.lower().endswith(BUNDLE_SUFFIX):
        raise BadRequest(f"the install request names {candidate.name!r}, not a "
                         f"{BUNDLE_SUFFIX} bundle: refused")
    try:
        info = os.lstat(candidate)
        parent = os.lstat(incoming)
    except FileNotFoundError:
        raise BadRequest(f"the uploaded bundle {candidate} is gone: upload it again") from None
    if not stat.S_ISREG(info.st_mode) or not stat.S_ISDIR(parent.st_mode):
        raise BadRequest(f"{candidate} is not a plain file: refused")
    return candidate


def remove_upload(paths: UpdatePaths, file: Path) -> None:
    """Delete an uploaded bundle after its install (only ever inside incoming/)."""
    try:
        checked = checked_upload(paths, str(file))
    except BadRequest:
        return
    _remove(checked)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove %s: %s", path, exc.strerror)
