"""Routing rules: which destinations a stored instance is queued for.

With no [[routes]], every instance goes to every destination. Otherwise an instance goes to the
destinations of every route it matches; a route matches when each of its non-empty lists
(calling AE titles, modalities, SOP classes) contains the instance's value.

A route's coercion rules (set, remove, prefix, deidentify) apply to what it sends. When several
matching routes send one instance to the same destination, the first of them in the file wins:
its rules (or its having none) decide the copy that destination gets.
"""

from __future__ import annotations

import logging

from appliance.config.schema import ApplianceConfig
from appliance.forward.config import RouteConfig
from appliance.store.instances import InstanceMeta

log = logging.getLogger(__name__)


class Router:
    def __init__(self, config: ApplianceConfig):
        self.destinations = [d.peer for d in config.destinations]
        self.routes = list(config.routes)

    def route(self, meta: InstanceMeta) -> list[str]:
        if not self.routes:
            return list(self.destinations)
        chosen: list[str] = []
        for route in self.routes:
            if self._matches(route, meta):
                chosen.extend(d for d in route.destinations if d not in chosen)
        return chosen

    def route_for(self, meta: InstanceMeta, destination: str) -> RouteConfig | None:
        """The first route in the file that matches `meta` and sends it to `destination`."""
        return next((r for r in self.routes if destination in r.destinations
                     and self._matches(r, meta)), None)

    @staticmethod
    def _matches(route: RouteConfig, meta: InstanceMeta) -> bool:
        if route.calling_aets and meta.calling_aet.strip() not in route.calling_aets:
            return False
        if route.modalities and meta.modality not in route.modalities:
            return False
        if route.sop_classes and meta.sop_class_uid not in route.sop_classes:
            return False
        return True
