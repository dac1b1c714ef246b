"""How a C-STORE data set reaches the disk: streamed by pynetdicom, fragment by fragment, into a
temp file in the data directory (never into memory, never into /tmp).

pynetdicom's `STORE_RECV_CHUNKED_DATASET` mode writes each received P-DATA fragment to a
`NamedTemporaryFile` with a proper File Meta header (the accepted transfer syntax, SOP class and
instance from the command set) and hands the path to the EVT_C_STORE handler. It puts that file
in the system temp directory, which on the box is a RAM disk and on any box another file system
(so no atomic rename into place). We point that one call at `instances/.incoming/` instead.
Memory stays bounded by the PDU size whatever the object's size.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pynetdicom import _config, dimse_messages

log = logging.getLogger(__name__)

_incoming: Path | None = None


def _temporary_file_in_incoming(*args, **kwargs):
    """Stand-in for tempfile.NamedTemporaryFile as called by pynetdicom's C-STORE receiver."""
    if _incoming is not None:
        kwargs["dir"] = _incoming
        kwargs.setdefault("prefix", ".rx-")
    return tempfile.NamedTemporaryFile(*args, **kwargs)


def receive_into(directory: Path | None) -> None:
    """Stream every received C-STORE data set into `directory` (None: the system temp dir)."""
    global _incoming
    _incoming = None if directory is None else Path(directory)
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = _temporary_file_in_incoming


def incoming_directory() -> Path | None:
    return _incoming
