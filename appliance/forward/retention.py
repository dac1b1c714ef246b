"""Retention of local copies: an instance is deleted once every destination has it and it is
older than `[storage] retention_days`, or earlier, oldest first, while the data directory is
fuller than `[storage] high_water_percent`. An instance still pending or failed for any
destination is never deleted. An instance routed to no destination counts as forwarded."""

from __future__ import annotations

import logging
import time

from appliance.dicom.storage_config import StorageConfig
from appliance.store.instances import InstanceStore
from appliance.store.queue import ForwardQueue

log = logging.getLogger(__name__)


def apply_retention(store: InstanceStore, queue: ForwardQueue, settings: StorageConfig) -> int:
    """Delete what the policy allows; returns how many instances were deleted."""
    deleted = 0
    cutoff = time.time() - settings.retention_days * 86400
    while True:
        rows = queue.forwarded(older_than=cutoff, limit=500)
        for row in rows:
            store.delete(row["id"], row["path"])
        deleted += len(rows)
        if len(rows) < 500:
            break
    while store.used_percent() > settings.high_water_percent:
        rows = queue.forwarded(limit=50)
        if not rows:
            log.warning("data directory is %.0f%% full (high-water mark %d%%) and every local "
                        "copy still waits for a destination: nothing can be deleted",
                        store.used_percent(), settings.high_water_percent)
            break
        for row in rows:
            store.delete(row["id"], row["path"])
        deleted += len(rows)
    if deleted:
        log.info("retention deleted %d forwarded local copies", deleted)
    return deleted
