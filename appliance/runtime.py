"""What a component may ask of the running appliance, without holding the supervisor itself:
the configuration file in use, a live reload, every component's health, and the event bus.

The web page, the front panel and the serial console change settings through
`appliance.config.editor.set_value(runtime.config_path_for_writes(), ...)` and then call
`runtime.request_reload()`, so every path goes through the same validation and is applied live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.config.loader import DEV_CONFIG
from appliance.events import EventBus

if TYPE_CHECKING:
    from appliance.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    state: str
    detail: str
    failures: int
    essential: bool


class Runtime:
    """Handed to components when they are built; the supervisor attaches itself before start."""

    def __init__(self, bus: EventBus, config_path: Path | None = None):
        self.bus = bus
        self.config_path = config_path
        self.supervisor: Supervisor | None = None

    def config_path_for_writes(self) -> Path:
        """Where configuration changes are written: the file in use, or the development file."""
        return self.config_path or DEV_CONFIG

    def request_reload(self) -> None:
        """Re-read the configuration file and apply it (as SIGHUP does)."""
        if self.supervisor is None:
            log.warning("reload requested before the supervisor started; ignored")
            return
        if self.config_path is None:
            # Running on defaults: once a file has been written, run from it from now on.
            self.config_path = self.supervisor.config_path = DEV_CONFIG
        self.supervisor.request_reload()

    def health(self) -> list[ComponentHealth]:
        """Every supervised component's state, for status screens, the web page and metrics."""
        if self.supervisor is None:
            return []
        result = []
        for slot in self.supervisor.slots:
            running = slot.state == "running"
            result.append(ComponentHealth(
                name=slot.name, state=slot.state,
                detail=slot.component.status() if running else slot.last_error,
                failures=slot.failures, essential=slot.component.essential))
        return result

    @property
    def healthy(self) -> bool:
        return self.supervisor is not None and self.supervisor.healthy()
