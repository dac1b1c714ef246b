"""Fixtures for forwarding: a real Orthanc (Debian package) as the PACS, started on free
127.0.0.1 ports with its own configuration and storage under the test's temp dir."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import (
    DCMTK_ENV,
    free_port,
    wait_listening,
    wait_until,  # noqa: F401 - the forward tests import it from here
)

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class Orthanc:
    """One Orthanc process; `stop()` and `start()` keep its storage (a PACS outage)."""

    def __init__(self, directory: Path, appliance_port: int = 11112, dicomweb: bool = False,
                 users: dict[str, str] | None = None):
        """`dicomweb`: with its DICOMweb plugin at /dicom-web/; `users`: HTTP basic
        authentication with these users (Orthanc's RegisteredUsers)."""
        self.directory = directory
        self.users = users or {}
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.ae_title = "ORTHANC"
        self.config_path = directory / "orthanc.json"
        self.log_path = directory / "orthanc.log"
        config = {
            "Name": "test-pacs",
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "DicomModalities": {"edgebox": ["EDGEBOX", "127.0.0.1", appliance_port]},
            "Plugins": [],
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "StorageCompression": False,
            "OverwriteInstances": False,
        }
        if dicomweb:
            config["Plugins"] = [DICOMWEB_PLUGIN]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        if self.users:
            config.update(AuthenticationEnabled=True, RegisteredUsers=self.users)
        directory.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.config_path.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen | None = None
        self.started_once = False

    def start(self) -> Orthanc:
        # A port free_port() found free can be taken by someone else's connection before
        # Orthanc binds it: on its first start, Orthanc gets fresh ports then; a restart keeps
        # its ports (the appliance is configured with them) and tries again a little later.
        for attempt in range(3):
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([ORTHANC, str(self.config_path)], env=DCMTK_ENV,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.directory)
            log.close()
            if self._listening(30.0):
                break
            in_use = "already in use" in self.log_path.read_text(errors="replace")
            if not in_use or attempt == 2:
                raise AssertionError(f"Orthanc is not listening; log:\n"
                                     f"{self.log_path.read_text(errors='replace')}")
            if self.started_once:
                # A restart keeps its ports: a connection that happens to hold one of them
                # (a client's ephemeral port) goes away; wait for it.
                time.sleep(3.0)
                continue
            self.http_port, self.dicom_port = free_port(), free_port()
            self.config.update(HttpPort=self.http_port, DicomPort=self.dicom_port)
            self.config_path.write_text(json.dumps(self.config, indent=2))
        self.started_once = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"Orthanc did not answer; log:\n{self.log_path.read_text()}")

    def _listening(self, timeout: float) -> bool:
        """Both ports accept connections (False when Orthanc exited or the time is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                wait_listening(self.http_port, timeout=0.2)
                wait_listening(self.dicom_port, timeout=0.2)
                return True
            except AssertionError:
                continue
        return False

    def stop(self) -> None:
        """Shut Orthanc down (it keeps its storage: started again, it is the same archive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def discard(self) -> None:
        """End a fixture's Orthanc whose storage is thrown away: killed at once (a graceful
        stop takes Orthanc seconds)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(20)
        self.proc = None

    def _request(self, path: str, body: bytes | None = None, method: str | None = None
                 ) -> bytes:
        method = method or ("POST" if body is not None else "GET")
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                         method=method)
        if self.users:  # as the first registered user
            user, password = next(iter(self.users.items()))
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as rsp:
            return rsp.read()

    def get(self, path: str):
        return json.loads(self._request(path))

    def get_text(self, path: str) -> str:
        return self._request(path).decode()

    def get_bytes(self, path: str) -> bytes:
        return self._request(path)

    def post(self, path: str, body):
        return json.loads(self._request(path, json.dumps(body).encode()))

    def delete(self, path: str) -> None:
        self._request(path, method="DELETE")

    def reset(self) -> Orthanc:
        """Running (started again if a test left it stopped) and empty: every patient
        deleted through the REST API and the change log cleared, so a module can share one
        Orthanc between tests that each expect an empty archive."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        for patient in self.get("/patients"):
            self.delete(f"/patients/{patient}")
        self.delete("/changes")
        assert self.get("/instances") == [] and self.get("/changes")["Changes"] == []
        return self

    def sop_instance_uids(self) -> list[str]:
        """Every stored instance's SOP Instance UID (a list: a duplicate would show twice)."""
        found = self.post("/tools/find", {"Level": "Instance", "Query": {}, "Expand": True})
        return [item["MainDicomTags"]["SOPInstanceUID"] for item in found]

    def new_instance_changes(self) -> int:
        """How many times Orthanc recorded a new instance (it would be > count on a resend
        only if it had stored a second copy)."""
        changes = self.get("/changes?limit=10000")
        return sum(1 for c in changes["Changes"] if c["ChangeType"] == "NewInstance")

    @property
    def dicomweb_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def dicomweb_peer(self, name: str = "pacs", **keys) -> dict:
        return {"name": name, "protocol": "dicomweb", "url": self.dicomweb_url, **keys}

    def peer(self, name: str = "pacs") -> dict:
        return {"name": name, "ae_title": self.ae_title, "host": "127.0.0.1",
                "port": self.dicom_port}


@pytest.fixture
def orthanc(tmp_path):
    """A running Orthanc; stopped after the test."""
    server = Orthanc(tmp_path / "orthanc").start()
    yield server
    server.discard()


@pytest.fixture(scope="module")
def module_orthanc(tmp_path_factory):
    """One Orthanc for a whole test module (its stop takes seconds); use `shared_orthanc`."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.discard()


@pytest.fixture
def shared_orthanc(module_orthanc):
    """The module's Orthanc, running and empty (`Orthanc.reset`) at the start of each test."""
    return module_orthanc.reset()
