"""Worklist fixtures: items to load, an in-process DICOM server (EngineServer) with the
worklist service on a free port, and DCMTK `findscu -W` as the querying modality (responses
extracted to files)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.verification import VerificationService
from appliance.worklist.item import items_from_dataset
from appliance.worklist.scp import WorklistService
from tests.conftest import DCMTK_ENV, free_port


def item(pid, name, accession, modality, station, date, time, *, study="", performing="",
         rp_id="", sps_id="", birth="19700101", sex="O", description="EXAMINATION") -> dict:
    """A worklist item in the DICOM JSON model, as pydicom's to_json_dict writes it."""
    def el(vr, value):
        if value == "":
            return {"vr": vr}
        return {"vr": vr, "Value": [{"Alphabetic": value} if vr == "PN" else value]}

    return {
        "00080050": el("SH", accession),
        "00100010": el("PN", name),
        "00100020": el("LO", pid),
        "00100030": el("DA", birth),
        "00100040": el("CS", sex),
        "0020000D": el("UI", study),
        "00401001": el("SH", rp_id),
        "00321060": el("LO", description),
        "00400100": {"vr": "SQ", "Value": [{
            "00400001": el("AE", station),
            "00400002": el("DA", date),
            "00400003": el("TM", time),
            "00080060": el("CS", modality),
            "00400006": el("PN", performing),
            "00400009": el("SH", sps_id),
        }]},
    }


#: The standard test worklist: every matching test knows these rows.
ITEMS = [
    item("1001", "DOE^JOHN", "A1001", "CT", "CT1", "20260115", "093000", study="1.2.3.1",
         performing="SMITH^ANNA", rp_id="RP1", sps_id="S1", description="CT HEAD"),
    item("1002", "DOE^JANE", "A1002", "MR", "MR1", "20260115", "143000", study="1.2.3.2",
         performing="JONES^BOB", rp_id="RP2", sps_id="S2"),
    item("1003", "MÜLLER^JÜRGEN", "A1003", "CT", "CT1", "20260116", "080000", study="1.2.3.3",
         performing="SMITH^ANNA", sps_id="S3"),
    item("1004", "李^华", "A1004", "US", "US1", "20260116", "120000", study="1.2.3.4",
         performing="WANG^LI", sps_id="S4"),
    item("1005", "doe^john", "A1005", "CT", "CT2", "20260117", "000000", study="1.2.3.5",
         sps_id="S5"),
    item("1006", "ROE^RICHARD", "", "CR", "", "20260117", "101500", study="1.2.3.6",
         performing="SMITH^ANNA", sps_id="S6"),
]


def load(service: WorklistService, items: list[dict], source: str = "test") -> None:
    service.store.put([i for d in items for i in items_from_dataset(d)], source)


@dataclass
class FindResult:
    returncode: int
    answers: list[pydicom.Dataset]
    log: str


def findscu(port: int, *keys: str | bytes, calling: str = "FINDSCU", extra: tuple = (),
            called: str = "EDGEBOX") -> FindResult:
    """Run `findscu -W` with `-k` keys; return the answers read back from the rsp files."""
    with tempfile.TemporaryDirectory() as out:
        args: list[str | bytes] = ["findscu", "-W", "-X", "-od", out, "-aet", calling,
                                   "-aec", called, *extra]
        for key in keys:
            args += ["-k", key]
        args += ["127.0.0.1", str(port)]
        proc = subprocess.run(args, capture_output=True, env=DCMTK_ENV, timeout=60)
        answers = [pydicom.dcmread(p) for p in sorted(Path(out).glob("rsp*.dcm"))]
    return FindResult(proc.returncode, answers,
                      (proc.stdout + proc.stderr).decode("utf-8", "replace"))


@pytest.fixture
def worklist_server(tmp_path):
    """Factory: an in-process EngineServer (the native engine) with the worklist service,
    loaded with `items`; (port, service). `dicom` adds `[dicom]` keys; with `tls` enabled
    there the port returned is the TLS one."""
    servers = []

    def start(worklist: dict | None = None, items: list[dict] | None = None,
              dicom: dict | None = None):
        config = ApplianceConfig.model_validate({
            "device": {"data_dir": str(tmp_path / f"data{len(servers)}")},
            "dicom": {"port": free_port(), "bind": "127.0.0.1", **(dicom or {})},
            "worklist": worklist or {}})
        service = WorklistService(config)
        load(service, ITEMS if items is None else items)
        server = EngineServer(config, [VerificationService(), service])
        server.start()
        servers.append(server)
        return server.tls_port or server.port, service

    yield start
    for server in servers:
        server.stop(timeout=1)


@pytest.fixture(scope="module")
def mwl(tmp_path_factory):
    """One running appliance (`appliance run` in a subprocess) with the standard ITEMS, shared by
    the read-only matching tests; returns its DICOM port."""
    from tests.conftest import ApplianceProcess, write_config

    path = tmp_path_factory.mktemp("mwl")
    config = ApplianceConfig.model_validate({"device": {"data_dir": str(path / "data")}})
    load(WorklistService(config), ITEMS)
    port = free_port()
    config_path = write_config(path / "appliance.toml", {
        "device": {"data_dir": str(path / "data")},
        "dicom": {"port": port, "bind": "127.0.0.1"},
        "web": {"bind": "127.0.0.1", "port": free_port()},
        "worklist": {"expire_after_hours": 0.0}})  # the items are dated January 2026
    proc = ApplianceProcess(config_path, path / "appliance.log")
    try:
        proc.wait_ready()
        yield port
    finally:
        proc.stop()

def write_wl_files(directory: Path, items: list[dict]) -> None:
    """Worklist files for DCMTK wlmscpfs (one .wl file per item, plus its lockfile)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lockfile").touch()
    for old in directory.glob("*.wl"):
        old.unlink()
    for number, data in enumerate(items):
        ds = Dataset.from_json(data)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(directory / f"item{number:06d}.wl", enforce_file_format=True)


@pytest.fixture
def wlmscpfs(tmp_path):
    """Factory: DCMTK's worklist SCP serving `items` as AE title RIS; returns (port, stop)."""
    procs = []

    def start(items: list[dict], port: int | None = None, aet: str = "RIS"):
        from tests.conftest import wait_listening

        root = tmp_path / "wlm"
        write_wl_files(root / aet, items)
        port = port or free_port()
        proc = subprocess.Popen(["wlmscpfs", "-dfp", str(root), "-dfr", "-dhl", "-s",
                                 str(port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_listening(port)

        def stop():
            proc.terminate()
            proc.wait(10)
        return port, stop

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def hl7_appliance(appliance):
    """Factory: an appliance with HL7 enabled (extra [worklist.hl7] keys); returns
    (process, dicom port, hl7 port, web port)."""
    def start(**hl7_keys):
        hl7_port = free_port()
        web_port = free_port()
        proc, port, _ = appliance({
            "web": {"bind": "127.0.0.1", "port": web_port},
            "worklist": {"hl7": {"enabled": True, "bind": "127.0.0.1", "port": hl7_port,
                                 **hl7_keys}}})
        return proc, port, hl7_port, web_port
    return start
