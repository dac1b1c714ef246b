"""The forward queue as the web page sees it: `appliance.forward.service.QueueService` (the
same service API as `appliance queue`) behind the web page's `QueueProvider` interface."""

from __future__ import annotations

import logging
import time

from appliance.config.schema import ApplianceConfig
from appliance.forward.service import QueueService
from appliance.web.providers import QueueDestination

log = logging.getLogger(__name__)


class ForwardQueueProvider:
    """Opens the queue per call (cheap SQLite reads), so it follows a changed data directory
    and list of destinations after every reload."""

    def __init__(self, config: ApplianceConfig):
        self.config = config

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config

    def _service(self) -> QueueService:
        return QueueService(self.config)

    def destinations(self) -> list[QueueDestination]:
        service = self._service()
        try:
            now = time.time()
            return [QueueDestination(
                name=s.name, pending=s.pending, failed=s.failed, held=s.held,
                oldest_age_seconds=max(0.0, now - s.oldest_pending_at)
                if s.oldest_pending_at else 0.0,
                last_error=s.last_error or "") for s in service.destinations()]
        finally:
            service.close()

    def _act(self, action: str, destination: str):
        service = self._service()
        try:
            return getattr(service, action)(destination)
        finally:
            service.close()

    def hold(self, destination: str) -> None:
        self._act("hold", destination)

    def release(self, destination: str) -> None:
        self._act("release", destination)

    def retry(self, destination: str) -> int:
        return self._act("retry", destination)
