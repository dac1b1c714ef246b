"""What the lanes of one destination worker share: the instances in flight (claimed by a lane,
not yet recorded), so that no instance is ever in two batches at once, and the rule by which
several batch lanes share the due instances.

A lane claims its batch from the due instances nobody has claimed, and gives the claim back only
after the batch's outcomes are recorded in the queue (done after the C-STORE Success, retry,
isolated, or nothing at all when the association could not be opened). The set lives in memory
only: after a restart nothing is in flight, and an instance sent but not yet recorded is sent
once more (receivers treat a repeated SOP Instance UID as the same object)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from appliance.store.queue import QueueItem


def share(free: int, lanes: int, batch_size: int) -> int:
    """How many of `free` due instances one of `lanes` lanes takes: its part of them (so the
    small batches at the start of a burst go out on every lane), at least 1, at most
    `batch_size`; 0 when none is free."""
    if free <= 0:
        return 0
    return min(batch_size, max(1, math.ceil(free / lanes)))


class InFlight:
    """The instance ids the lanes of one destination are sending right now."""

    def __init__(self, lanes: int):
        self.lanes = lanes
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def _free(self, due: Callable[[int], list[QueueItem]], batch_size: int,
              lanes: int) -> list[QueueItem]:
        """Due items nobody has claimed, oldest first (enough of them to take a share)."""
        return [item for item in due(batch_size * lanes + len(self._ids))
                if item.instance_id not in self._ids]

    def claim(self, due: Callable[[int], list[QueueItem]], batch_size: int,
              lanes: int | None = None) -> tuple[list[QueueItem], bool]:
        """Claim this lane's share of the due items (`due(limit)`: the queue's due items,
        oldest first); also whether due items were left to other lanes in flight (then the
        lane is woken when they give them back, no need to poll)."""
        lanes = self.lanes if lanes is None else lanes
        with self._lock:
            free = self._free(due, batch_size, lanes)
            items = free[:share(len(free), lanes, batch_size)]
            self._ids.update(item.instance_id for item in items)
            return items, bool(self._ids) and not items

    def peek(self, due: Callable[[int], list[QueueItem]], batch_size: int) -> list[QueueItem]:
        """The share a lane would claim now, not claimed (to open its association for)."""
        with self._lock:
            free = self._free(due, batch_size, self.lanes)
            return free[:share(len(free), self.lanes, batch_size)]

    def release(self, items: list[QueueItem]) -> None:
        """The lane is done with these (their outcomes recorded, or nothing sent)."""
        with self._lock:
            self._ids.difference_update(item.instance_id for item in items)
