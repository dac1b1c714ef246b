"""Counting the DICOM engine's native threads in this process by the names the engine gives
them (src/engine.cpp, src/thread_pool.hpp), so that threads other tests left to finish in the
background never change the count."""

from __future__ import annotations

from pathlib import Path

#: The engine's thread names: the accept thread and the connection threads.
ENGINE_THREAD_NAMES = ("dicom-accept", "dicom-conn")


def thread_names() -> list[str]:
    """Every native thread's name in this process (/proc/self/task/*/comm)."""
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except (FileNotFoundError, ProcessLookupError):  # the thread ended while we looked
            continue
    return names


def engine_threads() -> int:
    """How many of this process's threads are the engine's."""
    return sum(name in ENGINE_THREAD_NAMES for name in thread_names())
