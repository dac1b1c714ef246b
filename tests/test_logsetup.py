"""Logging goes to journald when systemd connected stderr to the journal, to stderr otherwise."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from appliance import logsetup


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def journal_stream_of_stderr() -> str:
    st = os.fstat(sys.stderr.fileno())
    return f"{st.st_dev}:{st.st_ino}"


def test_stderr_is_journal_only_when_journal_stream_names_stderr():
    assert logsetup.stderr_is_journal({"JOURNAL_STREAM": journal_stream_of_stderr()})
    assert not logsetup.stderr_is_journal({"JOURNAL_STREAM": "1:2"})
    assert not logsetup.stderr_is_journal({})


def test_configure_uses_the_journal_handler_under_systemd(monkeypatch, restore_root_logging):
    from systemd.journal import JournalHandler

    monkeypatch.setenv("JOURNAL_STREAM", journal_stream_of_stderr())
    logsetup.configure("WARNING")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1 and isinstance(handlers[0], JournalHandler)
    assert logging.getLogger().level == logging.WARNING


def test_configure_uses_stderr_otherwise(monkeypatch, restore_root_logging):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logsetup.configure("DEBUG")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1 and type(handlers[0]) is logging.StreamHandler
    assert logging.getLogger("pynetdicom").level == logging.DEBUG
    logsetup.set_level("INFO")
    assert logging.getLogger("pynetdicom").level == logging.WARNING
