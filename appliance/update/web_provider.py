"""Firmware upload as the web page sees it (`appliance.core.providers.FirmwareProvider`):
receive a bundle into `<update>/incoming/` without holding it in memory, ask the root
installer to install it (`handoff`), and report the install's progress and history.

The web process never runs RAUC; everything it does here works as user `appliance`.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator

import anyio

from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.update import history, status
from appliance.update.handoff import upload_name, write_request
from appliance.update.installer import BUNDLE_SUFFIX
from appliance.update.paths import UpdatePaths

log = logging.getLogger(__name__)

#: Largest bundle accepted (a root slot is 1280 MB; a compressed image is smaller).
MAX_BUNDLE_BYTES = 2 * 1024**3
#: Space left free on the data partition after an upload (images keep arriving meanwhile).
RESERVE_BYTES = 64 * 1024**2
SQUASHFS_MAGIC = b"hsqs"  # every RAUC bundle starts with its squashfs payload
HISTORY_SHOWN = 10


class UploadRefused(ApplianceError, ValueError):
    """An upload that is not taken; `status_code` is the HTTP answer, the message says why."""

    def __init__(self, status_code: int, message: str):
        self.status_code = status_code
        super().__init__(message)


class FirmwareUploads:
    def __init__(self, config: ApplianceConfig, max_bytes: int = MAX_BUNDLE_BYTES,
                 reserve_bytes: int = RESERVE_BYTES):
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes
        self._busy = threading.Lock()
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.paths = UpdatePaths.in_data_dir(config.device.data_dir)

    def state(self) -> dict:
        """The install status, whether an upload waits for the installer, recent history."""
        return {"status": status.read(self.paths.status).as_dict(),
                "pending": self.paths.request.exists(),
                "history": history.read(self.paths.history, last=HISTORY_SHOWN),
                "max_bytes": self.max_bytes}

    def check(self, filename: str, length: int | None) -> None:
        """Refuse before reading the body: wrong name, too big, busy, no space."""
        if not filename.lower().endswith(BUNDLE_SUFFIX):
            raise UploadRefused(400, f"{filename or 'the file'} is not a firmware bundle: "
                                f"choose a {BUNDLE_SUFFIX} file")
        if length is not None:
            if length == 0:
                raise UploadRefused(400, f"{filename} is empty: copy the bundle again")
            if length > self.max_bytes:
                raise UploadRefused(413, f"{filename} is {_mib(length)}, more than the "
                                    f"{_mib(self.max_bytes)} a bundle may have")
        if self.paths.request.exists():
            raise UploadRefused(409, "an uploaded bundle is already waiting to be installed: "
                                "wait for that install to finish")
        if status.read(self.paths.status).state == "installing":
            raise UploadRefused(409, "an update is being installed right now: wait for it "
                                "to finish")
        if length is not None:
            self.paths.incoming.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.paths.incoming).free
            if length + self.reserve_bytes > free:
                raise UploadRefused(507, f"not enough space on the data partition for "
                                    f"{filename} ({_mib(length)}; {_mib(free)} free)")

    async def receive(self, filename: str, length: int | None,
                      chunks: AsyncIterator[bytes]) -> dict:
        """Write the upload to incoming/ chunk by chunk, then request its install."""
        self.check(filename, length)
        if not self._busy.acquire(blocking=False):
            raise UploadRefused(409, "another bundle is being uploaded right now")
        try:
            return await self._receive(filename, length, chunks)
        finally:
            self._busy.release()

    async def _receive(self, filename: str, length: int | None,
                       chunks: AsyncIterator[bytes]) -> dict:
        self.paths.incoming.mkdir(parents=True, exist_ok=True)
        for stale in self.paths.incoming.glob(".*.part"):  # an upload cut off by a restart
            stale.unlink(missing_ok=True)
        final = self.paths.incoming / upload_name(filename)
        partial = final.with_name(f".{final.name}.part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o640)
        received = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if received == 0 and chunk[:4] != SQUASHFS_MAGIC[:len(chunk[:4])]:
                    raise UploadRefused(400, f"{filename} is not a firmware bundle (it does not "
                                        "start like a RAUC bundle): choose the .raucb file "
                                        "you were given")
                received += len(chunk)
                if received > self.max_bytes:
                    raise UploadRefused(413, f"{filename} is more than the "
                                        f"{_mib(self.max_bytes)} a bundle may have")
                await anyio.to_thread.run_sync(_write_all, fd, chunk)
            if received == 0:
                raise UploadRefused(400, f"{filename} is empty: copy the bundle again")
            if length is not None and received != length:
                raise UploadRefused(400, f"the upload of {filename} was cut off "
                                    f"({received} of {length} bytes): try again")
            await anyio.to_thread.run_sync(os.fsync, fd)
        except BaseException:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(partial, final)
        log.info("firmware bundle %s uploaded (%d bytes)", final.name, received)
        request = write_request(self.paths, final, "web")
        return {"file": final.name, "bytes": received, "requested": request["requested"]}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB" if size >= 1024**2 else f"{size} bytes"
