"""Logging goes to journald when systemd connected stderr to the journal, to stderr otherwise;
the last lines are kept in memory from the first one on."""

from __future__ import annotations

import logging
import os
import sys

from appliance.system import logging_setup


def journal_stream_of_stderr() -> str:
    st = os.fstat(sys.stderr.fileno())
    return f"{st.st_dev}:{st.st_ino}"


def test_stderr_is_journal_only_when_journal_stream_names_stderr():
    assert logging_setup.stderr_is_journal({"JOURNAL_STREAM": journal_stream_of_stderr()})
    assert not logging_setup.stderr_is_journal({"JOURNAL_STREAM": "1:2"})
    assert not logging_setup.stderr_is_journal({})


def test_configure_uses_the_journal_handler_under_systemd(monkeypatch, restore_root_logging):
    from systemd.journal import JournalHandler

    monkeypatch.setenv("JOURNAL_STREAM", journal_stream_of_stderr())
    logging_setup.configure("WARNING")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 2 and isinstance(handlers[0], JournalHandler)
    assert handlers[1] is logging_setup.recent_lines()
    assert logging.getLogger().level == logging.WARNING


def test_configure_uses_stderr_otherwise(monkeypatch, restore_root_logging):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logging_setup.configure("DEBUG")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 2 and type(handlers[0]) is logging.StreamHandler
    assert handlers[1] is logging_setup.recent_lines()
    assert logging.getLogger("pynetdicom").level == logging.DEBUG
    logging_setup.set_level("INFO")
    assert logging.getLogger("pynetdicom").level == logging.WARNING


def test_lines_from_before_the_web_page_started_are_on_its_logs_view(monkeypatch,
                                                                       restore_root_logging,
                                                                       tmp_path):
    """The web component starts last: what the other components logged while starting (a
    refused configuration value, a port in use) must be on its logs view all the same."""
    from appliance.config.schema import ApplianceConfig
    from appliance.core.events import EventBus
    from appliance.core.runtime import Runtime
    from appliance.web.context import WebContext

    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logging_setup.configure("INFO")
    logging.getLogger("appliance.storage").warning("a line from the first second of the run")
    config = ApplianceConfig.model_validate({"device": {"data_dir": str(tmp_path)}})
    context = WebContext(config, Runtime(EventBus()))
    context.attach()
    try:
        logging.getLogger("appliance.web").warning("and one after the web page started")
        text = context.log_text("appliance.log")
    finally:
        context.detach()
    assert "a line from the first second of the run" in text
    assert "and one after the web page started" in text
    logging_setup.configure("INFO")  # again (a reload): the lines are kept, the handler not doubled
    assert "a line from the first second" in logging_setup.recent_lines().text()
    assert logging.getLogger().handlers.count(logging_setup.recent_lines()) == 1
