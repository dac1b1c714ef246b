"""Storage Commitment fixtures: an in-process appliance (storage, the commitment component,
the native engine's DICOM server, and the forwarder when asked) on free ports, and
pynetdicom as the modality: it stores CT images, asks for commitment on the same
association, and receives the N-EVENT-REPORT there or, as an SCP listening with the SCP role
of Storage Commitment, on a new association."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

from appliance.commitment.service import CommitmentService
from appliance.config.schema import ApplianceConfig
from appliance.core.events import EventBus
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.storage import StorageService
from appliance.dicom.verification import VerificationService
from appliance.forward.component import Forwarder
from tests.conftest import free_port
from tests.forward.conftest import orthanc, wait_until  # noqa: F401 - fixtures used here
from tests.web.conftest import web  # noqa: F401 - fixture used here

WELL_KNOWN = "1.2.840.10008.1.20.1.1"
MODALITY_AET = "CT1"


def ct_image(number: int = 1) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.999.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.999.1.1"
    ds.PatientID, ds.PatientName, ds.Modality = "1001", "DOE^JOHN", "CT"
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.arange(256, dtype=np.uint16).tobytes()
    return ds


def action_information(images, transaction_uid: str | None = None) -> Dataset:
    info = Dataset()
    info.TransactionUID = transaction_uid or generate_uid()
    items = []
    for image in images:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        items.append(item)
    info.ReferencedSOPSequence = items
    return info


class Appliance:
    """Storage + commitment (+ forwarder) + DICOM server in this process."""

    def __init__(self, data_dir: Path, port: int | None = None, **sections):
        data = {"device": {"data_dir": str(data_dir)},
                "dicom": {"port": port or free_port(), "bind": "127.0.0.1"}, **sections}
        self.config = ApplianceConfig.model_validate(data)
        self.bus = EventBus()
        self.storage = StorageService(self.config, self.bus)
        self.commitment = CommitmentService(self.config, self.bus)
        self.forwarder = Forwarder(self.config, self.bus) if self.config.destinations else None
        self.storage.start()
        self.commitment.start()
        if self.forwarder is not None:
            self.forwarder.start()
        self.server = EngineServer(self.config, [VerificationService(), self.storage,
                                                 self.commitment], self.bus)
        self.server.start()
        self.port = self.server.port

    def stop(self) -> None:
        self.server.stop(timeout=2)
        if self.forwarder is not None:
            self.forwarder.stop(timeout=2)
        self.commitment.stop(timeout=2)
        self.storage.stop(timeout=2)

    def transactions(self) -> list[dict]:
        conn = self.storage.store.db.connection()
        return [dict(r) for r in conn.execute("SELECT * FROM commitment_transactions "
                                              "ORDER BY id")]

    def hashed(self, count: int) -> None:
        conn = self.storage.store.db.connection()
        wait_until(lambda: conn.execute("SELECT COUNT(*) FROM instance_hashes").fetchone()[0]
                   >= count, what=f"{count} instances hashed")


@pytest.fixture
def appliance_factory(tmp_path):
    started: list[Appliance] = []

    def start(data: str = "data", port: int | None = None, **sections) -> Appliance:
        app = Appliance(tmp_path / data, port, **sections)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


class Modality:
    """pynetdicom as the modality: C-STORE and Storage Commitment SCU; collects the
    N-EVENT-REPORTs it receives (on its own association, or as the listening SCP)."""

    def __init__(self):
        self.ae = AE(ae_title=MODALITY_AET)
        self.ae.add_requested_context(CTImageStorage)
        self.ae.add_requested_context(StorageCommitmentPushModel)
        self.ae.add_supported_context(StorageCommitmentPushModel, scu_role=True,
                                      scp_role=True)
        self.reports: list[tuple[int, Dataset, str]] = []  # (event type, info, where)
        self.received = threading.Event()
        self.listen_port: int | None = None
        self._server = None
        self.associations = []

    def _on_report(self, where: str):
        def handler(event):
            self.reports.append((event.event_type, event.event_information, where))
            self.received.set()
            return 0x0000, None
        return handler

    def listen(self) -> int:
        """Listen for reports on a new association (as a [[peers]] entry would be)."""
        self.listen_port = free_port()
        self._server = self.ae.start_server(
            ("127.0.0.1", self.listen_port), block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report("new association"))])
        return self.listen_port

    def peer(self) -> dict:
        return {"name": "ct1", "ae_title": MODALITY_AET, "host": "127.0.0.1",
                "port": self.listen_port}

    def associate(self, port: int):
        assoc = self.ae.associate(
            "127.0.0.1", port, ae_title="EDGEBOX",
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report("same association"))])
        assert assoc.is_established
        self.associations.append(assoc)
        return assoc

    def store(self, assoc, images) -> None:
        for image in images:
            status = assoc.send_c_store(image)
            assert status.Status == 0x0000

    def request(self, assoc, info: Dataset | None, action_type: int = 1,
                instance: str = WELL_KNOWN):
        status, _ = assoc.send_n_action(info, action_type, StorageCommitmentPushModel,
                                        instance)
        return status

    def wait_report(self, timeout: float = 20.0) -> tuple[int, Dataset, str]:
        deadline = time.monotonic() + timeout
        while not self.reports and time.monotonic() < deadline:
            self.received.wait(0.1)
        assert self.reports, "no N-EVENT-REPORT received"
        return self.reports.pop(0)

    def close(self) -> None:
        for assoc in self.associations:
            if assoc.is_established:
                assoc.release()
        if self._server is not None:
            self._server.shutdown()


@pytest.fixture
def modality():
    device = Modality()
    yield device
    device.close()


def failed_reasons(info: Dataset) -> dict[str, int]:
    return {str(item.ReferencedSOPInstanceUID): int(item.FailureReason)
            for item in info.get("FailedSOPSequence", [])}


def committed_uids(info: Dataset) -> set[str]:
    return {str(item.ReferencedSOPInstanceUID) for item in info.get("ReferencedSOPSequence", [])}
