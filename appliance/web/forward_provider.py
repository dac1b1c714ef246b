"""The forward queue as the web page sees it: `appliance.forward.service.QueueService` (the
same service API as `appliance queue`) behind the web page's `QueueProvider` interface,
including each destination's stuck instances and retry / skip of one."""

from __future__ import annotations

import logging
import time

from appliance.config.schema import ApplianceConfig
from appliance.core.providers import QueueDestination
from appliance.forward.service import QueueService, UnknownDestination, UnknownInstance
from appliance.web.context import NotAvailable

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

    def instances(self, destination: str, limit: int = 20, offset: int = 0):
        """(stuck instances with patient and study, how many there are)."""
        service = self._service()
        try:
            return service.instances(destination, limit, offset)
        finally:
            service.close()

    def retry_instance(self, destination: str, sop_instance_uid: str) -> None:
        self._instance_act("retry_instance", destination, sop_instance_uid)

    def skip_instance(self, destination: str, sop_instance_uid: str) -> None:
        self._instance_act("skip_instance", destination, sop_instance_uid)

    def _instance_act(self, action: str, destination: str, sop_instance_uid: str) -> None:
        service = self._service()
        try:
            getattr(service, action)(destination, sop_instance_uid)
        except (UnknownDestination, UnknownInstance) as exc:
            raise NotAvailable(str(exc)) from None
        finally:
            service.close()
