"""Logging for the appliance process: journald when systemd started us, stderr otherwise.

Only the entry points (`appliance run` and the CLI commands) call this; library modules just
use `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def stderr_is_journal(env: dict[str, str] | None = None) -> bool:
    """True when stderr is systemd's journal stream (JOURNAL_STREAM names its device:inode)."""
    env = os.environ if env is None else env
    value = env.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(":"))
        stat = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)


def configure(level: str = "INFO") -> None:
    """Send the root logger to journald or stderr at `level`; quieten chatty libraries."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handler: logging.Handler
    if stderr_is_journal():
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="appliance")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    """Apply a log level live (SIGHUP). pynetdicom logs every PDU at INFO: keep it to warnings
    unless we are debugging."""
    logging.getLogger().setLevel(level)
    logging.getLogger("pynetdicom").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
