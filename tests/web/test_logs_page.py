"""The logs page (issue 18): the run since start, newest first, a level filter and a text
search, wrapped lines, "show more"; from the in-process ring buffer (bounded in lines and
bytes) or from journald under systemd."""

from __future__ import annotations

import datetime
import html
import logging
import re

from appliance.system import logging_setup
from appliance.system.logging_setup import RecentLines
from appliance.web.log_view import ApplianceLog, JournalLog, LogQuery

log = logging.getLogger("appliance.test.logs")
log.setLevel(logging.INFO)  # the handlers keep INFO and up; pytest leaves the root at WARNING


def shown_lines(page_html: str) -> list[str]:
    body = re.search(r'<pre class="log"[^>]*>(.*?)</pre>', page_html, re.S).group(1)
    return [html.unescape(m) for m in re.findall(r'<span class="log-\w+">(.*?)</span>', body,
                                                  re.S)]


def test_newest_first_level_filter_and_search(logged_in):
    setup, _ = logged_in
    log.info("tick one of the level test")
    log.warning("the printer is out of film (level test)")
    log.error("association from CT1 aborted (level test)")
    log.info("tick two of the level test")

    lines = [x for x in shown_lines(setup.client.get("/logs").text) if "level test" in x]
    assert [x.split(": ", 1)[1] for x in lines] == [
        "tick two of the level test", "association from CT1 aborted (level test)",
        "the printer is out of film (level test)", "tick one of the level test"]

    warnings_up = shown_lines(setup.client.get("/logs?level=warning").text)
    assert any("out of film" in x for x in warnings_up)
    assert any("CT1 aborted" in x for x in warnings_up)
    assert not any("tick" in x for x in warnings_up)
    errors = shown_lines(setup.client.get("/logs?level=error").text)
    assert any("CT1 aborted" in x for x in errors) and not any("film" in x for x in errors)

    found = shown_lines(setup.client.get("/logs", params={"q": "OUT OF FILM"}).text)
    assert len(found) == 1 and "the printer is out of film" in found[0]
    page = setup.client.get("/logs", params={"q": "no such words anywhere"}).text
    assert shown_lines(page) == [] and "(no line matches)" in page
    assert 'value="warning" selected' in setup.client.get("/logs?level=warning").text


def test_long_lines_wrap_and_show_more_pages_back(logged_in):
    setup, _ = logged_in
    for number in range(250):
        log.info("paging line %03d", number)
    first = setup.client.get("/logs", params={"q": "paging line"}).text
    lines = shown_lines(first)
    assert len(lines) == 200 and lines[0].endswith("paging line 249")
    more = re.search(r'href="([^"]*limit=400)">Show more', first)
    assert more, "no show more link"
    everything = shown_lines(setup.client.get(html.unescape(more.group(1))).text)
    assert len(everything) == 250 and everything[-1].endswith("paging line 000")
    css = setup.client.get("/static/style.css").text
    rule = re.search(r"pre\.log \{[^}]*\}", css).group(0)
    assert "white-space: pre-wrap" in rule and "overflow-wrap: anywhere" in rule


def test_a_line_logged_before_the_web_started_is_on_the_page(web, monkeypatch,
                                                             restore_root_logging):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logging_setup.configure("INFO")  # what `appliance run` does first
    logging.getLogger("appliance.storage").warning("port 11112 in use at start-up (early)")
    setup = web()
    setup.setup_password()
    lines = shown_lines(setup.client.get("/logs", params={"q": "(early)"}).text)
    assert len(lines) == 1 and "port 11112 in use at start-up" in lines[0]


def test_the_ring_buffer_is_bounded_in_lines_and_in_bytes():
    by_lines = RecentLines(capacity=5, max_bytes=10_000)
    by_bytes = RecentLines(capacity=1000, max_bytes=2_000)
    logger = logging.getLogger("appliance.test.ring")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(by_lines)
    logger.addHandler(by_bytes)
    try:
        for number in range(100):
            logger.info("line %03d %s", number, "x" * 100)
    finally:
        logger.removeHandler(by_lines)
        logger.removeHandler(by_bytes)
    assert len(by_lines.lines) == 5 and by_lines.lines[-1].startswith(by_lines.lines[-1][:4])
    assert "line 099" in by_lines.lines[-1] and "line 095" in by_lines.lines[0]
    assert by_lines.dropped == 95
    assert by_bytes.size == sum(len(x) for x in by_bytes.lines) <= 2_000
    assert 10 < len(by_bytes.lines) < 100 and "line 099" in by_bytes.lines[-1]
    assert by_bytes.dropped == 100 - len(by_bytes.lines)
    page = ApplianceLog(by_bytes).read(LogQuery())
    assert "line 099" in page.lines[0].text
    assert any("older lines of this run no longer fit" in n for n in page.notes)


class FakeJournal:
    """The part of systemd.journal.Reader the page uses, over a list of entries."""

    def __init__(self, entries):
        self.entries, self.matches, self.position = entries, {}, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_match(self, **match):
        self.matches.update(match)

    def _mine(self):
        return [e for e in self.entries
                if all(str(e.get(k)) == v for k, v in self.matches.items())]

    def seek_tail(self):
        self.position = len(self._mine())

    def seek_head(self):
        self.position = -1

    def get_previous(self):
        self.position -= 1
        return self._mine()[self.position] if self.position >= 0 else {}

    def get_next(self):
        self.position += 1
        mine = self._mine()
        return mine[self.position] if self.position < len(mine) else {}


def entry(second: int, priority: int, message: str, run: str = "run-1") -> dict:
    stamp = datetime.datetime(2024, 5, 1, 8, 0, second)
    return {"__REALTIME_TIMESTAMP": stamp, "PRIORITY": priority, "MESSAGE": message,
            "_SYSTEMD_INVOCATION_ID": run}


def test_under_systemd_the_run_comes_from_the_journal_newest_first():
    entries = [entry(0, 6, "engine: listening on 104 (before python logging)"),
               entry(1, 6, "an earlier run", run="run-0"),
               entry(2, 4, "appliance.print: film low"),
               entry(3, 3, "appliance.forward: pacs refused")]
    journal = JournalLog({"_SYSTEMD_INVOCATION_ID": "run-1"}, lambda: FakeJournal(entries))
    source = ApplianceLog(RecentLines(), journal)
    page = source.read(LogQuery())
    assert page.source == "journal"
    assert [line.text.split(" ", 3)[3] for line in page.lines] == [
        "appliance.forward: pacs refused", "appliance.print: film low",
        "engine: listening on 104 (before python logging)"]
    assert page.lines[0].text.split(" ")[2] == "ERROR"
    assert [line.text for line in source.read(LogQuery(level="warning")).lines][1].endswith(
        "film low")
    assert len(source.read(LogQuery(search="ENGINE")).lines) == 1
    assert source.text().splitlines()[0].endswith("(before python logging)")


def test_an_unreadable_journal_falls_back_to_memory_and_says_why():
    def refused():
        raise PermissionError("no access to /var/log/journal")

    memory = RecentLines()
    memory.emit(logging.LogRecord("appliance", logging.INFO, __file__, 1, "kept in memory",
                                  None, None))
    page = ApplianceLog(memory, JournalLog({"_PID": "1"}, refused)).read(LogQuery())
    assert page.source == "memory" and "kept in memory" in page.lines[0].text
    assert "systemd-journal group" in page.notes[0] and "no access" in page.notes[0]
