"""The DICOM server component on the native engine (appliance.dicom.engine): one listener on
one port for every service, served by C++ on DCMTK.

The engine owns the socket, the association policy (called AE title and the printer profiles'
titles, calling-AE allowlist, association limit, the pre-negotiation limits, timeouts, max PDU),
C-ECHO and the reception of every C-STORE into a file. This component gives it the `[dicom]`
settings and the contexts the services declare, hands each received object to the Storage
service (`store_received`: check, durable store, index, queue; its status is the one sent),
every other request to the services' own handlers through `EngineDispatcher`, and each
association's events to the association log. It applies a configuration change live (policy
and log level to new associations; a new port or data directory gets a new listener).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.events import EventBus
from appliance.dicom.association_log import AssociationLog
from appliance.dicom.config import DicomConfig
from appliance.dicom.declared_context import DeclaredContext
from appliance.dicom.engine import DicomEngine, EngineSettings, contexts_of, retrieve_storage_of
from appliance.dicom.engine_dispatch import EngineDispatcher
from appliance.dicom.tls_files import TlsFileError, check_tls_files

log = logging.getLogger(__name__)

#: The C-STORE status when no storage service is there to take an object.
OUT_OF_RESOURCES = 0xA700


class DicomService(Protocol):
    """What a DICOM service plugs into the server: its presentation contexts (the engine
    accepts each abstract syntax with the transfer syntaxes the services declare) and its
    pynetdicom-style `(event, handler)` pairs (read by `EngineDispatcher`). A service may also
    offer `extra_ae_titles() -> list[str]`: further called AE titles it answers to (the print
    service's printer profiles), accepted even with strict called-AE checking; the one with
    `store_received` (Storage) gets every received object; one with `configured_by_server = True`
    gets each new configuration through its `configure(config)` from this server."""

    name: str

    def contexts(self) -> list[DeclaredContext]: ...

    def handlers(self) -> list[tuple]: ...


def offered_called_titles(services: list[DicomService]) -> set[str]:
    """Called AE titles the services answer to besides ours (`extra_ae_titles()`: the print
    service's printer profiles), as they are now."""
    titles: set[str] = set()
    for service in services:
        offer = getattr(service, "extra_ae_titles", None)
        if offer is not None:
            titles.update(title.strip() for title in offer())
    return titles


class EngineServer(Component):
    """The listener. Essential: the box is useless without it."""

    name = "dicom"
    essential = True

    def __init__(self, config: ApplianceConfig, services: list[DicomService],
                 bus: EventBus | None = None):
        self.services = services
        self.association_log = AssociationLog(bus)
        self.contexts = contexts_of(services)
        self.retrieve_storage = retrieve_storage_of(services)
        self.storage = next((s for s in services if hasattr(s, "store_received")), None)
        self.dispatcher = EngineDispatcher(services, config.dicom.dimse_timeout)
        self.engine: DicomEngine | None = None
        self.configure(config)

    # -- configuration ----------------------------------------------------------------------

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.settings: DicomConfig = config.dicom
        for service in self.services:  # those no component of their own reconfigures
            if getattr(service, "configured_by_server", False):
                service.configure(config)

    def _engine_settings(self) -> EngineSettings:
        return EngineSettings.from_config(self.settings, self.contexts,
                                          sorted(offered_called_titles(self.services)),
                                          self.retrieve_storage,
                                          self.config.storage_commitment.enabled)

    def _incoming_dir(self) -> Path:
        """Where received objects are written: the instance store's `.incoming` (same file
        system, so keeping one is a rename)."""
        if self.storage is not None:
            return self.storage.incoming_dir
        return Path(self.config.device.data_dir).absolute() / "instances" / ".incoming"

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.settings
        self.configure(config)
        new = self.settings
        if self.engine is None:
            return
        if (new.bind, new.port) != (old.bind, old.port):
            log.info("DICOM listener moving from %s:%d to %s:%d%s", old.bind, old.port,
                     new.bind, new.port, f" (TLS on {new.tls.port})" if new.tls.enabled else "")
            previous, self.engine = self.engine, None
            # The new listener takes the TLS port over (open TLS associations go on).
            previous_tls = previous.settings.tls
            if previous_tls is not None:
                previous.set_tls(None)
            try:
                self.start()  # bind the new port first: if that fails we raise, restarted
            except Exception:
                self.engine = previous  # still serving the old port until the restart
                if previous_tls is not None:
                    self._restore_tls(previous, previous_tls)
                raise
            threading.Thread(target=previous.stop, args=(30.0,), name="dicom-drain",
                             daemon=True).start()
        elif self._incoming_dir() != self.engine.incoming_dir:  # storage moved already
            log.info("DICOM listener restarting: received objects now go to %s",
                     self._incoming_dir())
            previous, self.engine = self.engine, None
            previous.stop(10.0)
            self.start()
        else:
            self._apply_tls()
            self.engine.update_policy(replace(self._engine_settings(),
                                              tls=self.engine.settings.tls))
            self.engine.apply_log_level()
            if new != old:
                log.info("DICOM policy updated: AE title %s, strict called AE %s, %d allowed "
                         "callers", new.ae_title, new.strict_called_aet,
                         len(new.allowed_calling_aets))

    @staticmethod
    def _restore_tls(engine: DicomEngine, tls) -> None:
        try:
            engine.set_tls(tls)
        except (RuntimeError, ValueError) as exc:
            log.error("DICOM TLS listener could not be reopened on port %d: %s", tls.port, exc)

    def _check_tls_files(self) -> None:
        """The `[dicom.tls]` files named and usable now; TlsFileError (the file and the
        reason) otherwise."""
        t = self.settings.tls
        check_tls_files(t.certificate, t.private_key, t.ca_certificates or None)

    def _apply_tls(self) -> None:
        """A changed `[dicom.tls]` (or its files replaced) on the running engine: new
        handshakes get the new certificate, the plain port and open associations stay. Files
        that cannot be used leave the previous ones serving, with the file and the reason in
        the log, tried again at the next reload (a restart would refuse them: see
        `appliance config check`)."""
        wanted = self._engine_settings().tls
        if wanted == self.engine.settings.tls:
            return
        try:
            if wanted is not None:
                self._check_tls_files()
            self.engine.set_tls(wanted)
        except (TlsFileError, RuntimeError, ValueError) as exc:
            log.error("DICOM TLS settings not applied, the previous ones still serve: %s", exc)
            return
        if wanted is None:
            log.info("DICOM TLS listener closed")
        else:
            log.info("DICOM TLS on port %d now with the certificate %s", self.engine.tls_port,
                     wanted.certificate)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        if s.tls.enabled:
            try:
                self._check_tls_files()
            except TlsFileError as exc:
                raise ComponentFailure(f"DICOM TLS: {exc}") from exc
        try:
            engine = DicomEngine(self._engine_settings(), self._incoming_dir(),
                                 on_store=self._on_store,
                                 on_request=self.dispatcher.on_request,
                                 on_association=self._on_association,
                                 store_check=self._store_check())
            self.dispatcher.attach(engine)
            engine.start()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ComponentFailure(f"cannot listen on {s.bind}:{s.port}: {exc}") from exc
        self.engine = engine
        log.info("DICOM listener on %s:%d as %s%s", s.bind, self.port, s.ae_title,
                 f", TLS on port {engine.tls_port}" if s.tls.enabled else "")

    def _store_check(self):
        """The storage service's native structural check for the engine, if it has one."""
        store_check = getattr(self.storage, "store_check", None)
        return store_check() if store_check is not None else None

    def _on_store(self, path: str, calling_ae: str, called_ae: str, sop_class_uid: str,
                  sop_instance_uid: str, transfer_syntax_uid: str,
                  content_hash: tuple[int, str] | None = None, check=None):
        if self.storage is None:
            return OUT_OF_RESOURCES
        return self.storage.store_received(path, calling_ae, called_ae, sop_class_uid,
                                           sop_instance_uid, transfer_syntax_uid,
                                           content_hash=content_hash, check=check)

    def _on_association(self, event: dict) -> None:
        self.association_log.engine_event(event)
        self.dispatcher.association_event(event)

    def extra_ae_titles(self) -> set[str]:
        """Called AE titles we answer to besides our own, as the services offer them now."""
        return offered_called_titles(self.services)

    @property
    def port(self) -> int:
        """The port actually bound (differs from the configured one only for port 0)."""
        if self.engine is None:
            return self.settings.port
        return self.engine.port

    @property
    def active_associations(self) -> int:
        return 0 if self.engine is None else self.engine.active_associations

    def check(self) -> None:
        if self.engine is None or not self.engine.running:
            raise ComponentFailure("DICOM listener stopped")

    @property
    def tls_port(self) -> int | None:
        """The TLS port actually bound; None without TLS."""
        if self.engine is None:
            return self.settings.tls.port if self.settings.tls.enabled else None
        return self.engine.tls_port if self.engine.tls_port >= 0 else None

    def status(self) -> str:
        s = self.settings
        tls = f", TLS :{self.tls_port}" if self.tls_port is not None else ""
        return f"{s.ae_title}@{s.bind}:{self.port}{tls}"

    def stop(self, timeout: float) -> None:
        """Stop accepting, give open associations `timeout` seconds, then abort them."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.stop(timeout)
