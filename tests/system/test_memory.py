"""Heap trimming after start-up: freed heap pages go back to the system."""

from __future__ import annotations

from pathlib import Path

from appliance.system.memory import release_free_heap


def anonymous_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_freed_heap_in_the_middle_is_given_back():
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(40_000)]  # ~40 MB of heap
    keep = blocks[-1]            # the last block stays: free() alone cannot shrink the heap
    del blocks
    before = anonymous_mb()
    assert release_free_heap()
    assert before - anonymous_mb() > 20
    assert keep[-1] == (40_000 - 1) % 256 and len(keep) == 1001
