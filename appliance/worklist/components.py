"""The worklist's supervised components: lifecycle (always), the HL7 listener and the upstream
proxy (each idle until enabled in the configuration)."""

from __future__ import annotations

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.events import EventBus
from appliance.worklist.hl7_listener import Hl7Listener
from appliance.worklist.lifecycle import WorklistLifecycle
from appliance.worklist.scp import WorklistService
from appliance.worklist.upstream import UpstreamProxy


def worklist_components(config: ApplianceConfig, bus: EventBus,
                        service: WorklistService) -> list[Component]:
    """Components sharing `service` (and so its store) with the MWL SCP."""
    return [WorklistLifecycle(config, bus, service), Hl7Listener(config, service),
            UpstreamProxy(config, service)]
