"""MPPS fixtures: an in-process DICOM server (EngineServer on the native engine) with the
worklist and MPPS services on a free port, loaded with the standard worklist, and pynetdicom
as the modality (the N-CREATE/N-SET data sets a modality sends)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.verification import VerificationService
from appliance.mpps.scp import MppsService
from appliance.worklist.scp import WorklistService
from tests.conftest import free_port
from tests.worklist.conftest import ITEMS, load

MPPS = ModalityPerformedProcedureStep


def scheduled_step(study="1.2.3.1", accession="A1001", rp_id="RP1", sps_id="S1") -> Dataset:
    item = Dataset()
    item.StudyInstanceUID = study
    item.ReferencedStudySequence = []
    item.AccessionNumber = accession
    item.RequestedProcedureID = rp_id
    item.RequestedProcedureDescription = ""
    item.ScheduledProcedureStepID = sps_id
    item.ScheduledProcedureStepDescription = ""
    item.ScheduledProtocolCodeSequence = []
    return item


def in_progress(step: Dataset | None = None, **changes) -> Dataset:
    """The N-CREATE Attribute List of a CT exam (PS3.4 Table F.7.2-1) for `step`."""
    ds = Dataset()
    ds.ScheduledStepAttributesSequence = [step or scheduled_step()]
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "1001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS-1"
    ds.PerformedStationAETitle = "CT1"
    ds.PerformedStationName = "CT ROOM 1"
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = "20260115"
    ds.PerformedProcedureStepStartTime = "093500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT HEAD"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return changed(ds, changes)


def changed(ds: Dataset, changes: dict) -> Dataset:
    """`ds` with each keyword of `changes` set to its value, or removed for None."""
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def final(status: str = "COMPLETED", **changes) -> Dataset:
    """The N-SET Modification List that ends the exam with one series."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20260115"
    ds.PerformedProcedureStepEndTime = "100000"
    series = Dataset()
    series.SeriesInstanceUID = generate_uid()
    series.ProtocolName = "HEAD"
    series.PerformingPhysicianName = ""
    series.OperatorsName = ""
    series.SeriesDescription = ""
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return changed(ds, changes)


@pytest.fixture
def mpps_server(tmp_path):
    """Factory: an in-process EngineServer with the worklist (the standard ITEMS) and MPPS
    services; `mpps` gives `[mpps]` keys, `data` a data directory name (the same name: the
    same database, for a restart), `peers` [[peers]] tables. Returns (server, worklist
    service, MPPS service)."""
    servers = []

    def start(mpps: dict | None = None, data: str = "data", peers: list | None = None):
        data_dir = tmp_path / data
        config = ApplianceConfig.model_validate({
            "device": {"data_dir": str(data_dir)},
            "dicom": {"port": free_port(), "bind": "127.0.0.1"},
            "peers": peers or [],
            "mpps": mpps or {}})
        worklist = WorklistService(config)
        if not (data_dir / "db").exists():
            load(worklist, ITEMS)
        service = MppsService(config, worklist)
        server = EngineServer(config, [VerificationService(), worklist, service])
        server.start()
        servers.append(server)
        return server, worklist, service

    yield start
    for server in servers:
        server.stop(timeout=1)


@pytest.fixture
def modality():
    """Factory: a pynetdicom association proposing MPPS to `port` (released afterwards)."""
    associations = []

    def connect(port: int):
        ae = AE(ae_title="CT1")
        ae.add_requested_context(MPPS)
        assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
        associations.append(assoc)
        return assoc

    yield connect
    for assoc in associations:
        if assoc.is_established:
            assoc.release()


def worklist_list(config: Path, *options: str) -> subprocess.CompletedProcess:
    """`appliance worklist list` with `config` (never the environment's)."""
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    listing = subprocess.run([sys.executable, "-m", "appliance", "worklist", "list", *options,
                              "--config", str(config)], capture_output=True, text=True,
                             env=env, timeout=60)
    assert listing.returncode == 0, listing.stderr
    return listing
