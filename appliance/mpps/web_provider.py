"""The MPPS SCP as the web page and /metrics see it (`appliance.core.providers.MppsProvider`):
the procedure steps kept (counts by status, the most recent ones) and the forward queue's
depth per RIS peer; read-only, over the MPPS service's database."""

from __future__ import annotations

import logging
from datetime import datetime

from appliance.mpps.attributes import COMPLETED, DISCONTINUED, IN_PROGRESS
from appliance.mpps.scp import MppsService

log = logging.getLogger(__name__)

#: Every status an MPPS can have, so a count of 0 is shown (and scraped) too.
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)


class MppsWebProvider:
    """MppsProvider over `service.store` (opened on first use, as the SCP does)."""

    def __init__(self, service: MppsService):
        self.service = service

    def _db(self):
        return self.service.store.db.connection()

    def counts(self) -> dict[str, int]:
        """Procedure steps kept, by status."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._db().execute("SELECT status, count(*) AS n FROM mpps_steps "
                                      "GROUP BY status"):
            counts[row["status"]] = row["n"]
        return counts

    def steps(self, limit: int = 50) -> list[dict]:
        """The most recently changed procedure steps, newest first."""
        return [{"uid": step.sop_instance_uid, "status": step.status,
                 "patient_name": step.patient_name, "patient_id": step.patient_id,
                 "accession_number": step.accession_number, "modality": step.modality,
                 "calling_aet": step.calling_aet,
                 "worklist": "scheduled" if step.scheduled else "unscheduled",
                 "started": _when(step.created_at), "updated": _when(step.updated_at)}
                for step in self.service.store.select(limit=limit)]

    def forward_pending(self) -> dict[str, int]:
        """Requests waiting in the forward queue, per RIS peer (peers of `[mpps] forward_to`
        with nothing waiting count 0)."""
        config = self.service.config
        pending = dict.fromkeys(config.mpps.forward_to if config is not None else (), 0)
        for row in self._db().execute("SELECT peer, count(*) AS n FROM mpps_forward "
                                      "GROUP BY peer"):
            pending[row["peer"]] = row["n"]
        return pending


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
