"""Which coercion rules apply to an instance a destination is about to send: decided at send
time, from the current configuration, by the router's matching (the first matching route in
the file that names the destination wins; see appliance/dicom/routing.py).

So a queue row needs nothing recorded about its route, and a corrected rule applies to what is
still waiting. A destination no rule-carrying route names gets no `prepare` at all: its
instances are streamed from their files exactly as before, at no extra cost.

Fail-safe for de-identification: when a route that names the destination de-identifies and
no route matches a waiting instance any more (the routes were changed after it was queued),
that instance is not sent as stored (it would reach a research destination with the patient's
identity): it fails for that destination with the reason, and `appliance queue NAME
--retry-instance UID` sends it once a route covers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset

from appliance.config.schema import ApplianceConfig
from appliance.dicom.routing import Router
from appliance.forward.coercion import CoercionError, CoercionRules, coerce_file
from appliance.store.coercion_tables import UidMap
from appliance.store.database import Database
from appliance.store.instances import InstanceMeta
from appliance.store.queue import QueueItem

log = logging.getLogger(__name__)

#: (queue item, stored file) -> the data set to send, or None to send the file as stored.
Prepare = Callable[[QueueItem, Path], Dataset | None]


class RouteRules:
    """The coercion rules of the configured routes, per destination and instance."""

    def __init__(self, config: ApplianceConfig, db: Database):
        self.router = Router(config)
        self.db = db
        self.uid_map = UidMap(db)

    def prepare_for(self, destination: str) -> Prepare | None:
        """The function the sender calls per instance, or None when no route that names
        `destination` has rules."""
        if not any(destination in r.destinations and CoercionRules.of(r)
                   for r in self.router.routes):
            return None
        return lambda item, path: self.prepare(destination, item, path)

    def rules(self, destination: str, item: QueueItem) -> CoercionRules:
        """The rules of the first route matching the stored instance that names
        `destination` (empty when none matches now)."""
        row = self.db.connection().execute(
            "SELECT calling_aet, modality, study_uid, series_uid FROM instances WHERE id = ?",
            (item.instance_id,)).fetchone()
        if row is None:
            return CoercionRules()
        meta = InstanceMeta(item.sop_instance_uid, item.sop_class_uid, row["study_uid"],
                            row["series_uid"], "", "", row["modality"], row["calling_aet"],
                            item.transfer_syntax)
        route = self.router.route_for(meta, destination)
        if route is not None:
            return CoercionRules.of(route)
        if any(destination in r.destinations and r.deidentify for r in self.router.routes):
            raise CoercionError(f"no route sends this instance to {destination} any more, and "
                                f"{destination} takes de-identified copies: not sent as stored")
        return CoercionRules()

    def prepare(self, destination: str, item: QueueItem, path: Path) -> Dataset | None:
        rules = self.rules(destination, item)
        if not rules:
            return None
        return coerce_file(path, rules, self.uid_map)
