"""What a component may ask of the running appliance, without holding the supervisor itself:
the configuration file in use, a live reload, every component's health, and the event bus.

The web page, the front panel and the serial console change settings through
`appliance.config.editor.set_value(runtime.config_path_for_writes(), ...)` and then call
`runtime.request_reload()`, so every path goes through the same validation and is applied live.
The panel and the console use `reload_and_wait()`, so they say "applied" only once it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from appliance.config.loader import DEV_CONFIG
from appliance.core.component import Component
from appliance.core.events import EventBus
from appliance.core.health import HealthView
from appliance.core.running_record import RELOAD_TIMEOUT, ReloadOutcome
from appliance.core.supervisor import ComponentHealth, Supervisor

__all__ = ["ComponentHealth", "Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    """Handed to components when they are built; the supervisor attaches itself before start."""

    def __init__(self, bus: EventBus, config_path: Path | None = None):
        self.bus = bus
        self.config_path = config_path
        self.supervisor: Supervisor | None = None
        self._health_view: HealthView | None = None

    @property
    def health_view(self) -> HealthView:
        """The process's one health picture (LEDs, front panel, console, the web page's
        verdict line), built on first use: components ask for it while they are built, so it
        sees every event from the start."""
        if self._health_view is None:
            self._health_view = HealthView(self.bus, expected=self._supervised)
        return self._health_view

    def _supervised(self) -> set[str]:
        return {component.name for component in self.components()}

    def components(self) -> tuple[Component, ...]:
        """The supervised components (none before the supervisor is attached)."""
        supervisor = self.supervisor
        return supervisor.components() if supervisor is not None else ()

    def config_path_for_writes(self) -> Path:
        """Where configuration changes are written: the file in use, or the development file."""
        return self.config_path or DEV_CONFIG

    def request_reload(self) -> int | None:
        """Re-read the configuration file and apply it (as SIGHUP does); returns the ticket
        `Supervisor.wait_reload` takes, None when there is no supervisor yet."""
        if self.supervisor is None:
            log.warning("reload requested before the supervisor started; ignored")
            return None
        if self.config_path is None:
            # Running on defaults: once a file has been written, run from it from now on.
            self.config_path = self.supervisor.config_path = DEV_CONFIG
        return self.supervisor.request_reload()

    def reload_and_wait(self, timeout: float = RELOAD_TIMEOUT,
                        cancelled: Callable[[], bool] = lambda: False) -> ReloadOutcome:
        """Reload, and wait until the appliance has applied the file (or says why not)."""
        supervisor = self.supervisor
        ticket = self.request_reload()
        if supervisor is None or ticket is None:
            return ReloadOutcome(False, "the appliance has not started yet")
        outcome = supervisor.wait_reload(ticket, timeout, cancelled)
        if outcome is not None:
            return outcome
        if cancelled():
            return ReloadOutcome(False, "interrupted (restarting with the new settings)")
        return ReloadOutcome(False, f"the appliance did not reload within {timeout:g} s")

    def health(self) -> list[ComponentHealth]:
        """Every supervised component's state, for status screens, the web page and metrics."""
        supervisor = self.supervisor
        return supervisor.health() if supervisor is not None else []

    @property
    def healthy(self) -> bool:
        return self.supervisor is not None and self.supervisor.healthy()
