"""The administrator password: a scrypt hash in the data directory, never a default.

The file holds one JSON object (salt, scrypt parameters, hash). It is written atomically and
readable only by its owner. `appliance passwd` and the web page's first-visit form create it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

MIN_LENGTH = 8
MAX_LENGTH = 256
#: scrypt cost parameters (n=2**14, r=8, p=1: about 16 MiB and ~50 ms on a Pi-class CPU).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class PasswordError(ApplianceError, ValueError):
    """A password was refused (too short, too long, ...)."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must be at most {MAX_LENGTH} characters long")
    if password.strip() != password:
        raise PasswordError("the password must not start or end with a space")


def password_file(data_dir: str | Path) -> Path:
    return Path(data_dir).absolute() / "web" / "admin-password"


class PasswordStore:
    """Reads, checks and replaces the scrypt hash of the administrator password."""

    def __init__(self, path: Path):
        self.path = path

    def is_set(self) -> bool:
        return self.path.is_file()

    def set(self, password: str) -> None:
        check_new_password(password)
        salt = os.urandom(16)
        digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        record = {"scheme": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                  "salt": _b64(salt), "hash": _b64(digest)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, (json.dumps(record) + "\n").encode(), mode=0o600)
        log.info("administrator password set (%s)", self.path)

    def verify(self, password: str) -> bool:
        try:
            record = json.loads(self.path.read_text())
            salt = base64.b64decode(record["salt"])
            expected = base64.b64decode(record["hash"])
            digest = _scrypt(password[:MAX_LENGTH], salt, int(record["n"]), int(record["r"]),
                             int(record["p"]))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("password file %s is unreadable (%s): log in is impossible until it is "
                      "set again with `appliance passwd`", self.path, exc)
            return False
        return hmac.compare_digest(digest, expected)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=64 * 2**20)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
