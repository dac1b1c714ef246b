"""Which components `appliance run` supervises, in start order. New components are added here."""

from __future__ import annotations

from appliance.component import Component
from appliance.config.schema import ApplianceConfig
from appliance.datadir import DataDirectoryMonitor
from appliance.dicom.server import DicomServer
from appliance.dicom.verification import VerificationService
from appliance.events import EventBus


def dicom_services() -> list:
    """The DICOM services served on our one AE, in the order their contexts are listed."""
    return [VerificationService()]


def build_components(config: ApplianceConfig, bus: EventBus) -> list[Component]:
    return [
        DataDirectoryMonitor(config),
        DicomServer(config, dicom_services(), bus),
    ]
