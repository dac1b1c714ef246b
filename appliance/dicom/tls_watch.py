"""Component `tls-certificate`: watches the box's DICOM TLS certificate (`[dicom.tls]
certificate`) for its expiry, so the LEDs, the front panel, the console and `/metrics` learn it
without reading files themselves.

It reads the certificate at start, at every reconfigure (a new upload keeps the same path but
is a new file: a reload always re-reads) and every `interval` seconds (an hour: whole days
left change once a day, and the warning must appear on the day it is due), and publishes the
`dicom_tls` event whenever what it found changes:

- `state`: "none" (no certificate configured), "ok", "expiring" (within
  `tls_files.EXPIRY_WARNING`), "expired" or "unreadable";
- `reason`: the sentence for the health picture ("DICOM TLS certificate expires in 12 days
  (2027-01-01)", "... expired on ...", or the file and why it cannot be read), "" when ok;
- `subject`, `not_after` (epoch seconds, None without a certificate), `days_left`.

It also serves the web page's `/metrics` the last certificate it read (`current()`). It never
fails: a bad file is news to report, not a reason to restart this watch (the DICOM listener
refuses to start on it and says so itself).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.dicom.tls_files import TlsSurvey, survey

log = logging.getLogger(__name__)


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TlsCertificateWatch(Component):
    name = "tls-certificate"

    def __init__(self, config: ApplianceConfig, bus: EventBus, interval: float = 3600.0,
                 now: Callable[[], datetime.datetime] = _utc_now):
        self.bus = bus
        self.interval = interval
        self.now = now
        self._next = 0.0
        self._survey = TlsSurvey("")
        self._published: dict | None = None
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings = config.dicom.tls

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.configure(config)
        self.look()

    def start(self) -> None:
        self._published = None  # a (re)start tells the picture again
        self.look()

    def stop(self, timeout: float) -> None:
        pass

    def check(self) -> None:
        if time.monotonic() >= self._next:
            self.look()

    def current(self) -> TlsSurvey:
        """The certificate as last read (no file is read here)."""
        return self._survey

    def look(self) -> None:
        """Read the certificate now and publish what changed."""
        self._next = time.monotonic() + self.interval
        self._survey = found = survey(self.settings.certificate, self.settings.ca_certificates)
        news = self._news(found)
        if news == self._published:
            return
        if news["state"] in ("expiring", "expired", "unreadable"):
            log.warning("%s", news["reason"])
        elif self._published is not None:
            log.info("DICOM TLS certificate: %s", self.status())
        self._published = news
        self.bus.publish(Topic.DICOM_TLS, **news)

    def _news(self, found: TlsSurvey) -> dict:
        if not found.certificate:
            return {"state": "none", "reason": "", "subject": "", "not_after": None,
                    "days_left": None}
        if found.info is None:
            return {"state": "unreadable", "reason": f"DICOM TLS certificate: {found.error}",
                    "subject": "", "not_after": None, "days_left": None}
        now = self.now()
        info = found.info
        return {"state": info.expiry(now), "reason": info.warning(now), "subject": info.subject,
                "not_after": info.not_after.timestamp(), "days_left": info.days_left(now)}

    def status(self) -> str:
        found = self._survey
        if not found.certificate:
            return "no certificate configured"
        if found.info is None:
            return f"warning: {found.error}"
        info, now = found.info, self.now()
        warning = info.warning(now)
        if warning:
            return f"warning: {warning}"
        return f"{info.subject} until {info.not_after:%Y-%m-%d} ({info.days_left(now)} days)"
