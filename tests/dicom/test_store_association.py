"""The native C-STORE SCU (appliance/dicom/store_association.py on engine/src/store_scu.cpp)
against real peers on 127.0.0.1: DCMTK's storescp receives what it sends (every value as
stored), a pynetdicom SCP rejects it, answers late or not at all, or stops reading in the middle
of a data set (given up after the DIMSE timeout, not DCMTK's 60 s); a missing or damaged stored
file fails before anything is sent; failures read as every SCU's (scu.association_failure);
and it waits without the GIL, so Python threads run meanwhile."""

from __future__ import annotations

import threading
import time

import pytest
from pydicom import dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from appliance.dicom.engine import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from appliance.dicom.scu import AssociationFailed, Timeouts
from appliance.dicom.store_association import UnreadableFile, open_store_association
from tests.conftest import free_port
from tests.storage.dicom_files import make_study

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
CT = str(CTImageStorage)


class SlowScp:
    """A pynetdicom Storage SCP on 127.0.0.1 answering each C-STORE after `delay` seconds."""

    def __init__(self, delay: float, called: str = "SLOW"):
        self.delay, self.port = delay, free_port()
        ae = AE(ae_title=called)
        ae.require_called_aet = True
        ae.add_supported_context(CTImageStorage, [EXPLICIT, IMPLICIT])
        self.requestors: list = []  # the A-ASSOCIATE-RQ's requestor of each association
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False,
            evt_handlers=[(evt.EVT_C_STORE, self._on_store),
                          (evt.EVT_ACCEPTED, lambda event: self.requestors.append(
                              event.assoc.requestor))])

    def _on_store(self, event):
        time.sleep(self.delay)
        return 0x0000


@pytest.fixture
def slow_scp():
    started = []

    def start(delay: float) -> SlowScp:
        started.append(SlowScp(delay))
        return started[-1]

    yield start
    for scp in started:
        scp.server.shutdown()


def open_to(port: int, called: str = "ARCHIVE", seconds: float = 5):
    return open_store_association("127.0.0.1", port, "EDGEBOX", called,
                                  [(CT, EXPLICIT), (CT, IMPLICIT)], Timeouts.all(seconds))


def test_stored_files_and_data_sets_arrive_with_every_value_as_stored(storescp, tmp_path):
    port, out = storescp("ARCHIVE"), tmp_path / "storescp0"
    files = make_study(tmp_path / "study", 3)
    assoc = open_to(port)
    assert assoc.accepted == {(CT, EXPLICIT), (CT, IMPLICIT)} and assoc.is_established
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        assert assoc.store_file(path, CT, ds.SOPInstanceUID, EXPLICIT) == 0x0000
    converted = dcmread(files[0])
    converted.SOPInstanceUID = "1.2.3.4.5.6.7"
    assert assoc.store_dataset(converted, IMPLICIT) == 0x0000
    assoc.release()
    assert not assoc.is_established
    received = {ds.SOPInstanceUID: ds for ds in map(dcmread, sorted(out.iterdir()))}
    assert len(received) == 4
    for path in files:
        sent = dcmread(path)
        got = received[sent.SOPInstanceUID]
        assert got.file_meta.TransferSyntaxUID == EXPLICIT
        assert got == sent  # every element, pixel data included
    assert received["1.2.3.4.5.6.7"].file_meta.TransferSyntaxUID == IMPLICIT
    assert received["1.2.3.4.5.6.7"].PixelData == converted.PixelData


def test_a_missing_or_damaged_file_is_not_sent_and_the_association_goes_on(storescp, tmp_path):
    port, out = storescp("ARCHIVE"), tmp_path / "storescp0"
    [path] = make_study(tmp_path / "study", 1)
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(path.read_bytes()[:-4000])  # pixel data cut short
    uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    assoc = open_to(port)
    with pytest.raises(FileNotFoundError, match="is missing"):
        assoc.store_file(tmp_path / "gone.dcm", CT, uid, EXPLICIT)
    with pytest.raises(UnreadableFile):
        assoc.store_file(damaged, CT, uid, EXPLICIT)
    with pytest.raises(UnreadableFile, match="not " + IMPLICIT):  # stored in another syntax
        assoc.store_file(path, CT, uid, IMPLICIT)
    assert assoc.is_established and list(out.iterdir()) == []
    assert assoc.store_file(path, CT, uid, EXPLICIT) == 0x0000
    assoc.release()


def test_it_introduces_itself_as_the_product(slow_scp):
    scp = slow_scp(0)
    open_to(scp.port, called="SLOW").release()
    [requestor] = scp.requestors
    assert requestor.implementation_class_uid == IMPLEMENTATION_CLASS_UID
    assert requestor.implementation_version_name == IMPLEMENTATION_VERSION_NAME
    assert requestor.ae_title == "EDGEBOX"


def test_refusals_read_as_every_scus(slow_scp):
    with pytest.raises(AssociationFailed, match=r"^connection refused \(nothing listening"):
        open_to(free_port())
    scp = slow_scp(0)
    with pytest.raises(AssociationFailed) as refused:
        open_to(scp.port, called="SOMEONE")
    assert refused.value.rejected
    assert str(refused.value) == ("association rejected: called AE title not recognised "
                                  "(rejected permanent, service user)")


def test_no_answer_in_time_ends_the_association_and_python_runs_meanwhile(slow_scp, tmp_path):
    [path] = make_study(tmp_path / "study", 1)
    uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    scp = slow_scp(3)
    assoc = open_to(scp.port, called="SLOW", seconds=1)
    result, ticks = [], []
    sender = threading.Thread(
        target=lambda: result.append(assoc.store_file(path, CT, uid, EXPLICIT)))
    sender.start()
    while sender.is_alive():  # this thread keeps the GIL only briefly: the store waits without
        ticks.append(assoc.is_established)  # ... and is_established never waits for it
        time.sleep(0.01)
    sender.join()
    assert result == [None] and not assoc.is_established
    assert "no C-STORE response within 1 s" in assoc.last_failure
    assert len(ticks) > 20  # about 1 s of 10 ms ticks while the store waited


class StalledScp:
    """A pynetdicom Storage SCP that stops reading from the socket once the first data of a
    C-STORE has arrived (its reader thread waits in the EVT_DATA_RECV handler until `resume`),
    so a sender's writes block as soon as the socket buffers are full."""

    def __init__(self):
        self.port = free_port()
        self.resume = threading.Event()
        self.stalled = threading.Event()
        ae = AE(ae_title="STALLED")
        ae.add_supported_context(CTImageStorage, [EXPLICIT])
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_DATA_RECV, self._on_data)])

    def _on_data(self, event):
        if len(event.data) > 1000:  # P-DATA of the data set, not the association request
            self.stalled.set()
            self.resume.wait(120)

    def close(self):
        self.resume.set()
        self.server.shutdown()


def test_a_peer_that_stops_reading_fails_the_store_after_the_timeout(tmp_path):
    [path] = make_study(tmp_path / "study", 1, rows=4096, columns=4096)  # 32 MB of pixels
    uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    scp = StalledScp()
    try:
        assoc = open_to(scp.port, called="STALLED", seconds=2)
        started = time.monotonic()
        assert assoc.store_file(path, CT, uid, EXPLICIT) is None
        waited = time.monotonic() - started
        assert scp.stalled.is_set() and not assoc.is_established
        # the destination's timeout, not DCMTK's 60 s send timeout for every socket
        assert waited < 10, waited  # 2 s here; no A-ABORT waiting as long again
        assert assoc.last_failure == "the destination took no data for 2 s", assoc.last_failure
        assert assoc.stalled
    finally:
        scp.close()
