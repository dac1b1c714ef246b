"""Giving the heap that start-up used and freed back to the system.

Start-up (the configuration schema, imports, the web app) leaves freed blocks in glibc's heap
that `free()` keeps for later; `malloc_trim(0)` returns the whole free pages of it. Called once
by the supervisor when the box is ready: about 1 MB less resident memory, idle and after work
alike (issue 14, docs/benchmarks.md). Without glibc (musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)


def release_free_heap() -> bool:
    """Collect garbage, then hand free heap pages back to the system; False when the C
    library has no malloc_trim."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        log.debug("no malloc_trim in this C library: heap not trimmed")
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
