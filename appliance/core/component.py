"""What the supervisor runs: a component with start, stop, a health check and live reconfiguration.

A component owns one job (the DICOM listener, the data directory watch, ...). It never
restarts itself: it raises, or reports failure from `check()`, and the supervisor decides.
"""

from __future__ import annotations

import abc
import logging
from enum import StrEnum

from appliance.config.schema import ApplianceConfig

log = logging.getLogger(__name__)


class ComponentState(StrEnum):
    """Where the supervisor has a component: the `state` of `Runtime.health()`, of the
    `component` event and of the web page, API and metrics. A `StrEnum`, so it compares equal
    to (and serialises as) its lower-case value: JSON and templates show "running" etc."""

    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


class Component(abc.ABC):
    """Base class of every supervised component."""

    #: Short name used in logs, STATUS= lines and the status page.
    name: str = "component"
    #: An essential component that stays down makes the whole process unhealthy, so the
    #: supervisor stops feeding systemd's watchdog and systemd restarts the service.
    essential: bool = False

    @abc.abstractmethod
    def start(self) -> None:
        """Start working; return when the component is up. Raise if it cannot start."""

    @abc.abstractmethod
    def stop(self, timeout: float) -> None:
        """Stop within about `timeout` seconds, letting in-flight work finish where possible."""

    def check(self) -> None:  # noqa: B027 - optional hook: healthy by default
        """Raise `ComponentFailure` (or anything) when the component is no longer healthy.

        Called from the supervisor's loop a few times a second: keep it cheap.
        """

    def status(self) -> str:
        """One short line for STATUS= and the status page."""
        return "running"

    def reconfigure(self, config: ApplianceConfig) -> None:
        """Apply a new configuration without a restart where possible.

        The default restarts the component with the new configuration.
        """
        self.stop(timeout=10.0)
        self.configure(config)
        self.start()

    def restart_if_changed(self, config: ApplianceConfig) -> bool:
        """A `reconfigure` for components whose `configure` keeps their section in
        `self.settings`: restart only when that section changed. Returns True if restarted."""
        old = getattr(self, "settings", None)
        self.configure(config)
        if self.settings == old:
            return False
        self.stop(5.0)
        self.start()
        return True

    def configure(self, config: ApplianceConfig) -> None:  # noqa: B027 - optional hook
        """Take a configuration while stopped (used by the default `reconfigure`)."""
