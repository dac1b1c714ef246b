"""How a C-STORE data set reaches the disk: streamed by pynetdicom, fragment by fragment, into a
temp file in the data directory (never into memory, never into /tmp).

pynetdicom's `STORE_RECV_CHUNKED_DATASET` mode writes each received P-DATA fragment to a
`NamedTemporaryFile` with a proper File Meta header (the accepted transfer syntax, SOP class and
instance from the command set) and hands the path to the EVT_C_STORE handler. It puts that file
in the system temp directory, which on the box is a RAM disk and on any box another file system
(so no atomic rename into place). We point that one call at `instances/.incoming/` instead, and
hand pynetdicom an `IncomingFile`: the same few methods pynetdicom uses (`write`, `file.flush`,
`close`, `name`), writing each fragment straight to the file descriptor (no user-space buffer,
no per-fragment flush) and asking the kernel to start writing large objects back to disk while
they are still arriving, so the durable flush before Success has little left to wait for.
Memory stays bounded by the PDU size whatever the object's size; the file is complete (preamble,
File Meta header, data set as received) when the handler sees it, so it is moved into place by a
rename alone.

A write that fails (the disk is full, ENOSPC, or any other I/O error) must not escape: it would
be raised in pynetdicom's reader thread, killing the association with no answer and leaving
the partial file open. `IncomingFile` records the error instead, closes its descriptor and
removes the partial file at once, and swallows the rest of the data set; the C-STORE handler
asks `write_failure(event.dataset_path)` and answers 0xA700 (or 0x0110) for that one object,
and the association goes on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import tempfile
import uuid
import weakref
from pathlib import Path

from pynetdicom import _config, dimse_messages

log = logging.getLogger(__name__)

#: Start writeback of a received object every this many bytes (large objects only).
WRITEBACK_CHUNK = 8 * 2**20
_SYNC_FILE_RANGE_WRITE = 2

_incoming: Path | None = None
#: Every IncomingFile pynetdicom still holds, by name (gone with the object).
_files: weakref.WeakValueDictionary[str, IncomingFile] = weakref.WeakValueDictionary()


def _load_sync_file_range():
    """Linux sync_file_range(2) through libc, or None where there is no such call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _load_sync_file_range()


class IncomingFile:
    """A received data set being written to `instances/.incoming/` (stands in for the
    NamedTemporaryFile pynetdicom would open; it is not deleted on close: the handler renames
    it into place, and pynetdicom unlinks whatever is left after the handler)."""

    def __init__(self, directory: Path | None):
        self.error: OSError | None = None
        self.size = 0
        self._written_back = 0
        try:
            fd, name = tempfile.mkstemp(prefix=".rx-", suffix=".dcm", dir=directory)
        except OSError as exc:  # no room even for the directory entry
            fd = -1
            name = os.path.join(directory or tempfile.gettempdir(),
                                f".rx-failed-{uuid.uuid4().hex}.dcm")
            self.error = exc
        self.fd = fd
        self.name = name
        _files[name] = self

    @property
    def file(self) -> IncomingFile:  # pynetdicom calls `.file.flush()` after each fragment
        return self

    def write(self, data) -> int:
        view = memoryview(data)
        total = len(view)
        self.size += total
        if self.error is not None:
            return total  # the object is already lost: drop the rest of it
        try:
            while view:
                done = os.write(self.fd, view)
                view = view[done:]
            if self.size - self._written_back >= WRITEBACK_CHUNK:
                self._start_writeback()
        except OSError as exc:
            self._fail(exc)
        return total

    def _fail(self, exc: OSError) -> None:
        """Give up on this object: close the descriptor and remove the partial file now."""
        self.error = exc
        self.close()
        try:
            os.unlink(self.name)
        except OSError:
            pass
        log.debug("receiving into %s failed after %d bytes: %s", self.name, self.size, exc)

    def _start_writeback(self) -> None:
        """Let the kernel write the new part to disk now (asynchronously), not all at the end."""
        start, self._written_back = self._written_back, self.size
        if _sync_file_range is not None:
            _sync_file_range(self.fd, start, self.size - start, _SYNC_FILE_RANGE_WRITE)

    def flush(self) -> None:
        """Nothing is buffered in user space."""

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __del__(self) -> None:
        # Still open when dropped: the association ended in the middle of this object
        # (abort, lost connection), so nobody will ever answer for it. Never leave it behind.
        if getattr(self, "fd", -1) >= 0:
            self._fail(OSError("reception abandoned"))

    def __enter__(self) -> IncomingFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _temporary_file_in_incoming(*args, **kwargs):
    """Stand-in for tempfile.NamedTemporaryFile as called by pynetdicom's C-STORE receiver."""
    if _incoming is not None:
        return IncomingFile(_incoming)
    return tempfile.NamedTemporaryFile(*args, **kwargs)


def receive_into(directory: Path | None) -> None:
    """Stream every received C-STORE data set into `directory` (None: the system temp dir)."""
    global _incoming
    _incoming = None if directory is None else Path(directory)
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = _temporary_file_in_incoming


def write_failure(path: str | os.PathLike) -> OSError | None:
    """The error that made a received data set's file incomplete (it is already removed), or
    None when every byte of it was written."""
    received = _files.get(os.fspath(path))
    return None if received is None else received.error


def incoming_directory() -> Path | None:
    return _incoming
