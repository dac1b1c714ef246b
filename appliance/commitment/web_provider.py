"""Storage Commitment transactions as the web page sees them (`CommitmentProvider`: the queue
page's table and /metrics), read from the running `storage-commitment` component's store."""

from __future__ import annotations

import time

from appliance.commitment.checker import FAILED
from appliance.commitment.service import CommitmentService
from appliance.core.providers import CommitmentTransaction

REASONS = {0x0110: "processing failure", 0x0112: "no such object instance",
           0x0119: "class/instance conflict", 0x0131: "duplicate transaction UID"}


class CommitmentWebProvider:
    def __init__(self, service: CommitmentService):
        self.service = service

    def counts(self) -> dict[str, int]:
        store = self.service.store
        if store is None:
            return {}
        return store.counts()

    def transactions(self, limit: int = 50) -> list[CommitmentTransaction]:
        store = self.service.store
        if store is None:
            return []
        shown = []
        for t in store.recent(limit):
            failures = tuple(
                f"{item.sop_instance_uid}: 0x{item.failure_reason or 0x0110:04X} "
                f"{REASONS.get(item.failure_reason or 0x0110, '')}".rstrip()
                for item in store.items(t.id) if item.result == FAILED)
            shown.append(CommitmentTransaction(
                transaction_uid=t.transaction_uid, calling_aet=t.calling_aet, state=t.state,
                received=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.received_at)),
                reported=f"sent on {t.report_via}" if t.reported_at else "",
                report_error=t.report_error or "", failures=failures))
        return shown
