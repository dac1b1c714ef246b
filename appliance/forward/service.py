"""The one service API over the forward queues: what `appliance queue`, the web page and the
metrics read (per-destination counts, oldest pending, last error, and the undelivered instances
with their own errors, e.g. one the PACS aborts on, sent alone) and the operator's actions
(hold, release, retry now). It works on the database directly, so it serves a running
appliance and a stopped one alike; a running forwarder sees a change within a second."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.forward.stuck import PAGE_SIZE, StuckRow, describe
from appliance.store.instances import INSTANCES_DIR, open_database
from appliance.store.queue import DestinationCounts, ForwardQueue, InstanceError

log = logging.getLogger(__name__)

ERRORS_SHOWN = 20  # undelivered instances with their own error listed per destination


class UnknownDestination(ApplianceError, KeyError):
    """No [[destinations]] entry and no queue rows for that name."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownInstance(ApplianceError, KeyError):
    """No undelivered instance with that SOP Instance UID for that destination."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class DestinationStatus:
    """One destination as shown to people and to /metrics."""

    name: str
    target: str  # AE@host:port, or "(not configured)"
    configured: bool
    held: bool
    pending: int
    failed: int
    done: int
    oldest_pending_at: float | None
    last_error: str | None
    last_error_at: float | None
    last_success_at: float | None
    next_attempt: float
    isolated: int = 0  # pending instances sent alone (the destination aborted on them)
    instance_errors: list[InstanceError] = field(default_factory=list)  # the oldest ones
    instance_errors_total: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class QueueService:
    def __init__(self, config: ApplianceConfig):
        self.config = config
        self.data_dir = Path(config.device.data_dir).absolute()
        self.db = open_database(self.data_dir)
        self.queue = ForwardQueue(self.db)

    def close(self) -> None:
        self.db.close()

    def _configured(self) -> list[str]:
        return [d.peer for d in self.config.destinations]

    def destinations(self) -> list[DestinationStatus]:
        result = []
        for counts in self.queue.counts(self._configured()):
            result.append(self._status(counts))
        return result

    def _status(self, c: DestinationCounts,
                errors_shown: int = ERRORS_SHOWN) -> DestinationStatus:
        peer = self.config.peer(c.destination)
        configured = c.destination in self._configured()
        target = ("(not configured)" if not (peer and configured) else
                  f"STOW-RS {peer.url}" if peer.protocol == "dicomweb" else
                  f"{peer.ae_title}@{peer.host}:{peer.port}")
        errors, total = self.queue.instance_errors(c.destination, errors_shown)
        return DestinationStatus(c.destination, target, configured, c.held, c.pending, c.failed,
                                 c.done, c.oldest_pending_at, c.last_error, c.last_error_at,
                                 c.last_success_at, c.next_attempt, c.isolated, errors, total)

    def _check(self, name: str) -> None:
        if name not in [s.name for s in self.destinations()]:
            known = ", ".join(self._configured()) or "none configured"
            raise UnknownDestination(f"no destination named {name!r} (known: {known})")

    def hold(self, name: str) -> None:
        self._check(name)
        self.queue.hold(name, True)
        log.info("destination %s held", name)

    def release(self, name: str) -> None:
        self._check(name)
        self.queue.hold(name, False)
        log.info("destination %s released", name)

    def retry(self, name: str) -> int:
        """Failed items back in the queue and every backoff cleared; returns the failed count."""
        self._check(name)
        count = self.queue.retry_now(name)
        log.info("destination %s: retry now (%d failed items re-queued)", name, count)
        return count

    def instances(self, name: str, limit: int = PAGE_SIZE,
                  offset: int = 0) -> tuple[list[StuckRow], int]:
        """The destination's stuck instances (tried and pending, or failed), oldest first, with
        patient and study; and how many there are."""
        self._check(name)
        items, total = self.queue.stuck(name, min(limit, PAGE_SIZE), offset)
        return describe(items, self.data_dir / INSTANCES_DIR), total

    def retry_instance(self, name: str, sop_instance_uid: str) -> None:
        """That instance is due now (failed or waiting out its backoff)."""
        self._check(name)
        if not self.queue.retry_instance(name, sop_instance_uid):
            raise UnknownInstance(f"{name}: no undelivered instance {sop_instance_uid!r}")
        log.info("destination %s: instance %s to be sent again now", name, sop_instance_uid)

    def skip_instance(self, name: str, sop_instance_uid: str) -> None:
        """Give that instance up for this destination (failed; `retry` brings it back)."""
        self._check(name)
        if not self.queue.skip_instance(name, sop_instance_uid):
            raise UnknownInstance(f"{name}: no instance {sop_instance_uid!r} waiting to be "
                                  "sent (failed ones are skipped already)")
        log.warning("destination %s: instance %s skipped by the operator (not sent)", name,
                    sop_instance_uid)


def age(since: float | None, now: float | None = None) -> str:
    """'3m 12s' style age of a timestamp, '-' for none."""
    if since is None:
        return "-"
    seconds = max(0, int((now or time.time()) - since))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
