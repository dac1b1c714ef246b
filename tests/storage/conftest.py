"""Fixtures for the Storage SCP: an in-process DICOM server with the storage service on a free
port (fast), and copies of pydicom's bundled files with unique SOP Instance UIDs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.storage import StorageService
from appliance.dicom.verification import VerificationService
from tests.conftest import free_port
from tests.storage.dicom_files import bundled_files


class StorageServer:
    """StorageService + EngineServer in this process, stopped after the test."""

    def __init__(self, data_dir: Path, **sections):
        data = {"device": {"data_dir": str(data_dir)},
                "dicom": {"port": free_port(), "bind": "127.0.0.1"}, **sections}
        self.config = ApplianceConfig.model_validate(data)
        self.storage = StorageService(self.config)
        self.storage.start()
        self.server = EngineServer(self.config, [VerificationService(), self.storage])
        self.server.start()
        self.port = self.server.port

    @property
    def store(self):
        return self.storage.store

    def rows(self) -> list[dict]:
        conn = self.store.db.connection()
        return [dict(r) for r in conn.execute("SELECT * FROM instances ORDER BY id")]

    def queue_rows(self) -> list[dict]:
        conn = self.store.db.connection()
        return [dict(r) for r in conn.execute("SELECT * FROM forward_queue")]

    def stop(self) -> None:
        self.server.stop(timeout=2)
        self.storage.stop(timeout=2)
        self.store_db_close()

    def store_db_close(self) -> None:
        pass


@pytest.fixture
def storage_server(tmp_path):
    """Factory: start a storage server with extra config sections."""
    servers: list[StorageServer] = []

    def start(**sections) -> StorageServer:
        server = StorageServer(tmp_path / f"data{len(servers)}", **sections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def unique_bundled(tmp_path_factory) -> list[Path]:
    """pydicom's bundled files, each re-saved in its own transfer syntax with a fresh SOP
    Instance UID (several bundled files share one)."""
    out = tmp_path_factory.mktemp("bundled")
    paths = []
    for source in bundled_files():
        ds = dcmread(source)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = out / source.name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def tmpfs(tmp_path):
    """Factory: a real tmpfs of `size_mb` (so the space really runs out), unmounted after the
    test. Skips only when mounting is not permitted here (it needs root)."""
    mounts: list[Path] = []

    def mount(size_mb: int) -> Path:
        point = tmp_path / f"tmpfs{len(mounts)}"
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                                 str(point)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)
