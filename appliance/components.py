"""Which components `appliance run` supervises, in start order. New components are added here."""

from __future__ import annotations

from appliance.component import Component
from appliance.config.schema import ApplianceConfig
from appliance.datadir import DataDirectoryMonitor
from appliance.dicom.server import DicomServer
from appliance.dicom.storage import StorageService
from appliance.dicom.verification import VerificationService
from appliance.events import EventBus
from appliance.runtime import Runtime


def dicom_services(storage: StorageService | None = None) -> list:
    """The DICOM services served on our one AE, in the order their contexts are listed.
    `storage` is the running Storage SCP component (a stopped one answers 0xA700)."""
    return [VerificationService(), storage or StorageService(ApplianceConfig())]


def build_components(config: ApplianceConfig, bus: EventBus,
                     runtime: Runtime | None = None) -> list[Component]:
    """The components in start order. `runtime` lets a component read health, or write a
    setting and ask for a live reload (see appliance.runtime)."""
    runtime = runtime or Runtime(bus)
    storage = StorageService(config, bus)
    return [
        DataDirectoryMonitor(config),
        storage,
        DicomServer(config, dicom_services(storage), bus),
    ]
