"""The logs page's reading of the appliance log: the whole run since start, newest first,
filtered by level and text, a page at a time ("show more").

Under systemd (stderr is the journal) the lines come from journald for this run of the unit
(`_SYSTEMD_INVOCATION_ID`, else this process's `_PID`): that includes what was written before
the logging setup and the engine's own stderr. Otherwise, or when the journal cannot be read
(the service user is not in the `systemd-journal` group), from the in-process ring buffer the
logging setup installs at process start (logging_setup.RecentLines); the page says which.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from appliance.system import logging_setup
from appliance.system.logging_setup import LogLine, RecentLines

log = logging.getLogger(__name__)

#: The level filter's choices: the least severe level shown.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
PAGE_LINES = 200
MAX_PAGE_LINES = 2000
#: A search reads at most this many journal entries (a Pi answers within a second or two).
JOURNAL_SCAN = 50_000
#: syslog priority (journal PRIORITY) -> Python logging level.
PRIORITY_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL,
                   3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO, 6: logging.INFO,
                   7: logging.DEBUG}


@dataclass(frozen=True)
class LogQuery:
    level: str = ""     # one of LEVELS, "" for all
    search: str = ""    # case-insensitive text, "" for all
    offset: int = 0     # lines of the result skipped (the pages already shown)
    limit: int = PAGE_LINES

    def matches(self, line: LogLine) -> bool:
        if self.level and line.level < LEVELS[self.level]:
            return False
        return not self.search or self.search.casefold() in line.text.casefold()


@dataclass
class LogPage:
    lines: list[LogLine]
    more: bool                   # further (older) matching lines exist
    source: str                  # "journal" or "memory"
    notes: list[str] = field(default_factory=list)


def level_name(level: int) -> str:
    return logging.getLevelName(level).lower()


def _page(newest_first: Iterable[LogLine], query: LogQuery) -> tuple[list[LogLine], bool]:
    skipped, out = 0, []
    for line in newest_first:
        if not query.matches(line):
            continue
        if skipped < query.offset:
            skipped += 1
            continue
        if len(out) == query.limit:
            return out, True
        out.append(line)
    return out, False


class MemoryLog:
    """The ring buffer's lines (bounded in lines and bytes: the run since start while it fits)."""

    source = "memory"

    def __init__(self, recent: RecentLines):
        self.recent = recent

    def read(self, query: LogQuery) -> LogPage:
        lines, more = _page(reversed(self.recent.snapshot()), query)
        notes = []
        if not more and self.recent.dropped:
            notes.append(f"{self.recent.dropped} older lines of this run no longer fit in "
                         "memory")
        return LogPage(lines, more, self.source, notes)

    def text(self) -> str:
        return self.recent.text()


class JournalLog:
    """This run's lines from journald. `reader` makes a systemd.journal.Reader (a test gives
    its own)."""

    source = "journal"

    def __init__(self, match: dict[str, str], reader: Callable | None = None):
        self.match = match
        if reader is None:
            from systemd import journal

            reader = journal.Reader
        self.reader = reader

    def _entries(self, newest_first: bool) -> Iterator[LogLine]:
        with self.reader() as journal:
            journal.add_match(**self.match)
            if newest_first:
                journal.seek_tail()
                step = journal.get_previous
            else:
                journal.seek_head()
                step = journal.get_next
            while entry := step():
                yield _journal_line(entry)

    def read(self, query: LogQuery) -> LogPage:
        scanned = 0

        def bounded() -> Iterator[LogLine]:
            nonlocal scanned
            for line in self._entries(newest_first=True):
                scanned += 1
                if scanned > JOURNAL_SCAN:
                    return
                yield line

        lines, more = _page(bounded(), query)
        notes = []
        if scanned > JOURNAL_SCAN:
            notes.append(f"searched the newest {JOURNAL_SCAN} lines of the journal; download "
                         "the log for the rest")
        return LogPage(lines, more, self.source, notes)

    def text(self) -> str:
        return "".join(line.text + "\n" for line in self._entries(newest_first=False))


def _journal_line(entry: dict) -> LogLine:
    stamp = entry.get("__REALTIME_TIMESTAMP")
    created = stamp.timestamp() if hasattr(stamp, "timestamp") else time.time()
    try:
        level = PRIORITY_LEVELS.get(int(entry.get("PRIORITY", 6)), logging.INFO)
    except (TypeError, ValueError):
        level = logging.INFO
    message = entry.get("MESSAGE", "")
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
    return LogLine(created, level, f"{when} {logging.getLevelName(level)} {message}")


def journal_match(env: dict[str, str] | None = None) -> dict[str, str] | None:
    """What selects this run in the journal, or None when we do not log to the journal."""
    env = os.environ if env is None else env
    if not logging_setup.stderr_is_journal(env):
        return None
    if env.get("INVOCATION_ID"):
        return {"_SYSTEMD_INVOCATION_ID": env["INVOCATION_ID"]}
    return {"_PID": str(os.getpid())}


class ApplianceLog:
    """The appliance log as the page reads it: the journal when we log there, the ring buffer
    otherwise, and the ring buffer with a note when the journal cannot be read."""

    def __init__(self, recent: RecentLines, journal: JournalLog | None = None):
        self.memory = MemoryLog(recent)
        self.journal = journal

    @classmethod
    def for_this_process(cls, recent: RecentLines) -> ApplianceLog:
        match = journal_match()
        return cls(recent, JournalLog(match) if match else None)

    def read(self, query: LogQuery) -> LogPage:
        if self.journal is not None:
            try:
                page = self.journal.read(query)
                if page.lines or query.offset or query.level or query.search:
                    return page
                problem = "the journal has no lines of this run"
            except Exception as exc:  # the reader raises OSError and friends from C
                problem = f"the journal cannot be read ({exc})"
            page = self.memory.read(query)
            page.notes.insert(0, f"{problem}: add the service user to the systemd-journal "
                                 "group; showing the lines kept in memory since start")
            return page
        return self.memory.read(query)

    def text(self) -> str:
        if self.journal is not None:
            try:
                text = self.journal.text()
                if text:
                    return text
            except Exception as exc:
                log.warning("the journal cannot be read, the download has the lines kept in "
                            "memory: %s", exc)
        return self.memory.text()


def file_page(text: str, query: LogQuery) -> LogPage:
    """A page of another log file under `<data_dir>/logs` (plain text lines, levels guessed
    from the words in them)."""
    lines = [LogLine(0.0, _guess_level(line), line) for line in text.splitlines()]
    found, more = _page(reversed(lines), query)
    return LogPage(found, more, "file")


def _guess_level(line: str) -> int:
    for name in ("CRITICAL", "ERROR", "WARNING", "DEBUG"):
        if f" {name} " in line:
            return logging.getLevelName(name)
    return logging.INFO
