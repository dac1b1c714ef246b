"""The one-time setup code: on a box without an administrator password, setting the first
password needs this code, so the first stranger on the network cannot take the box over.

While no password is set the web component makes a random code (8 characters without the
look-alikes 0/O, 1/I/L), keeps it in `data_dir/web/setup-code` (mode 0600, so it survives a
restart and stays readable only by root), logs it at WARNING as its own line
"web setup code: XXXXXXXX" (the journal) and publishes it on the bus (topic `web_setup`), from
which the front panel and the serial console show it. A successful setup, `appliance passwd`
or a password set otherwise ends the code; a factory reset makes a new one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path

from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.system.atomic_file import write_atomically
from appliance.web.passwords import PasswordStore

log = logging.getLogger(__name__)

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 8
WRONG_SETUP_CODE = ("wrong or missing setup code: the appliance shows it on its front panel and "
                    "the serial console's `status`, and logs it as 'web setup code: ...'")


def setup_code_file(data_dir: str | Path) -> Path:
    return Path(data_dir).absolute() / "web" / "setup-code"


def normalized(offered: str) -> str:
    """What a person typed, as the code is stored: case, spaces and dashes do not matter."""
    return "".join(ch for ch in offered.upper() if ch not in " -\t")


class SetupCode:
    """The code of one data directory, valid only while no password is set."""

    def __init__(self, path: Path, passwords: PasswordStore, bus: EventBus):
        self.path = path
        self.passwords = passwords
        self.bus = bus

    def ensure(self) -> str | None:
        """The code while the box has no password (made now if there is none yet; logged
        and published every time, so the journal has it after each start); None once a
        password is set (the code file is removed)."""
        if self.passwords.is_set():
            self.end()
            return None
        code = self._read()
        if code is None:
            code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, (code + "\n").encode("ascii"), mode=0o600)
        log.warning("web setup code: %s", code)
        self.bus.publish(Topic.WEB_SETUP, code=code)
        return code

    def matches(self, offered: object) -> bool:
        code = None if self.passwords.is_set() else self._read()
        if code is None or not isinstance(offered, str) or len(offered) > 64:
            return False
        return hmac.compare_digest(normalized(offered).encode(), code.encode())

    def end(self) -> None:
        """The password is set: the code is no longer valid."""
        had = self.path.exists()
        self.path.unlink(missing_ok=True)
        if had:
            log.info("web setup code ended (the administrator password is set)")
        self.bus.publish(Topic.WEB_SETUP, code="")

    def _read(self) -> str | None:
        try:
            code = normalized(self.path.read_text(encoding="ascii").strip())
        except (OSError, UnicodeDecodeError):
            return None
        if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
            return None
        return code
