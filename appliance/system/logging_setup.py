"""Logging for the appliance process: journald when systemd started us, stderr otherwise, and
the last lines kept in memory from the first one on (the web page's logs view, the serial
console's `log tail`).

Only the entry points (`appliance run` and the CLI commands) call this; library modules just
use `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from dataclasses import dataclass

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RECENT_LINES = 2000
RECENT_BYTES = 1024 * 1024  # the lines kept in memory never hold more text than this


@dataclass(frozen=True)
class LogLine:
    """One logged line as the logs view filters it: when, how severe, and the formatted text
    (the text may span several lines, e.g. a traceback)."""

    created: float
    level: int
    text: str


class RecentLines(logging.Handler):
    """The last lines logged (INFO and up), in memory: at most `capacity` lines and
    `max_bytes` characters of text, the oldest dropped first."""

    def __init__(self, capacity: int = RECENT_LINES, max_bytes: int = RECENT_BYTES):
        super().__init__(logging.INFO)
        self.entries: deque[LogLine] = deque(maxlen=capacity)
        self.max_bytes = max_bytes
        self.size = 0  # characters of text held
        self.dropped = 0  # lines let go to stay within the bounds
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)[:self.max_bytes]
        except Exception:
            self.handleError(record)
            return
        with self._guard:
            if len(self.entries) == self.entries.maxlen:
                self.size -= len(self.entries[0].text)
                self.dropped += 1
            self.entries.append(LogLine(record.created, record.levelno, text))
            self.size += len(text)
            while self.size > self.max_bytes and self.entries:
                self.size -= len(self.entries.popleft().text)
                self.dropped += 1

    def snapshot(self) -> list[LogLine]:
        """The lines kept, oldest first."""
        with self._guard:
            return list(self.entries)

    @property
    def lines(self) -> list[str]:
        return [entry.text for entry in self.snapshot()]

    def text(self) -> str:
        lines = self.lines
        return "\n".join(lines) + ("\n" if lines else "")

    def tail(self, count: int) -> list[str]:
        return self.lines[-count:]

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)


_recent: RecentLines | None = None


def recent_lines() -> RecentLines | None:
    """The process's recent lines, kept since `configure` (None when it was not called: a
    test or a library user keeps its own)."""
    return _recent


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
    global _recent
    if _recent is None:
        _recent = RecentLines()
    root.addHandler(_recent)  # the same one on every call: its lines are kept
    set_level(level)


def set_level(level: str) -> None:
    """Apply a log level live (SIGHUP). pynetdicom logs every PDU at INFO: keep it to warnings
    unless we are debugging."""
    logging.getLogger().setLevel(level)
    logging.getLogger("pynetdicom").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
