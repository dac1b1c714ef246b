"""The association log's line and bus events for the engine's association events: the text a
technician reads and the payloads the LEDs, the dashboard and the association history use."""

from __future__ import annotations

import logging

import pytest

from appliance.core.events import EventBus
from appliance.dicom.association_log import AssociationLog

LOGGER = "appliance.dicom.association_log"
ECHO = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"


@pytest.fixture
def logged():
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    return AssociationLog(bus), events


def ended(**fields) -> dict:
    event = {"event": "ended", "association_id": 7, "peer": "127.0.0.1:4000",
             "calling_ae": "CT1", "called_ae": "EDGEBOX",
             "contexts": [{"context_id": 1, "abstract_syntax": ECHO,
                           "transfer_syntax": IMPLICIT},
                          {"context_id": 3, "abstract_syntax": CT,
                           "transfer_syntax": EXPLICIT}],
             "operations": {"C-STORE": 2, "C-ECHO": 1}, "outcome": "released",
             "duration": 0.01234}
    event.update(fields)
    return event


def test_an_association_is_one_line_and_two_events(logged, caplog):
    log, events = logged
    caplog.set_level(logging.INFO, logger=LOGGER)
    log.engine_event({"event": "opened", "peer": "127.0.0.1:4000"})
    assert log.open_count == 1
    log.engine_event({"event": "established", "association_id": 7, "peer": "127.0.0.1:4000"})
    log.engine_event(ended())
    assert log.open_count == 0
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "association from 127.0.0.1:4000 calling='CT1' called='EDGEBOX' "
        "contexts=[Verification SOP Class [Implicit VR Little Endian]; "
        "CT Image Storage [Explicit VR Little Endian]] operations=[1 C-ECHO, 2 C-STORE] "
        "duration=0.012s outcome=released")
    assert [(e.topic, e.data) for e in events] == [
        ("association_open", {"peer": "127.0.0.1:4000"}),
        ("association", {"peer": "127.0.0.1:4000", "calling_aet": "CT1",
                         "called_aet": "EDGEBOX",
                         "contexts": ["Verification SOP Class [Implicit VR Little Endian]",
                                      "CT Image Storage [Explicit VR Little Endian]"],
                         "operations": {"C-ECHO": 1, "C-STORE": 2}, "duration": 0.01234,
                         "outcome": "released"})]


@pytest.mark.parametrize("outcome, level", [
    ("rejected: calling AE title not recognised (rejected permanent, service user)",
     logging.WARNING),
    ("refused: too many pending connections (max_pending_connections 64)", logging.WARNING),
    ("aborted: P-DATA-TF length 70000 over announced max 65536", logging.WARNING),
    ("aborted", logging.INFO),
    ("connection closed", logging.INFO),
])
def test_refusals_are_warnings_with_no_contexts_or_operations(logged, caplog, outcome, level):
    log, events = logged
    caplog.set_level(logging.INFO, logger=LOGGER)
    log.engine_event({"event": "opened", "peer": "10.0.0.9:5"})
    log.engine_event({"event": "ended", "association_id": 0, "peer": "10.0.0.9:5",
                      "calling_ae": "", "called_ae": "", "contexts": [], "operations": {},
                      "outcome": outcome, "duration": 0.5})
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == level
    assert record.getMessage() == (
        "association from 10.0.0.9:5 calling='' called='' contexts=[] operations=[none] "
        f"duration=0.500s outcome={outcome}")
    assert events[-1].data == {"peer": "10.0.0.9:5", "calling_aet": "", "called_aet": "",
                               "contexts": [], "operations": {}, "duration": 0.5,
                               "outcome": outcome}
    assert log.open_count == 0


def test_an_unknown_uid_is_shown_as_it_is(logged, caplog):
    log, events = logged
    caplog.set_level(logging.INFO, logger=LOGGER)
    log.engine_event(ended(contexts=[{"context_id": 1, "abstract_syntax": "1.2.3.4",
                                      "transfer_syntax": IMPLICIT}], operations={}))
    assert "contexts=[1.2.3.4 [Implicit VR Little Endian]]" in caplog.records[-1].getMessage()
    assert log.open_count == 0  # an end without an open does not go below zero
    assert events[-1].data["contexts"] == ["1.2.3.4 [Implicit VR Little Endian]"]


def test_without_a_bus_only_the_line(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    log = AssociationLog(None)
    log.engine_event({"event": "opened", "peer": "p"})
    log.engine_event(ended())
    assert caplog.records[-1].getMessage().startswith("association from 127.0.0.1:4000 ")
