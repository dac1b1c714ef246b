"""Which components `appliance run` supervises, in start order. New components are added here."""

from __future__ import annotations

from appliance.commitment.service import CommitmentService
from appliance.commitment.web_provider import CommitmentWebProvider
from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.data_dir import DataDirectoryMonitor
from appliance.core.events import EventBus
from appliance.core.providers import Providers
from appliance.core.runtime import Runtime
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.storage import StorageService
from appliance.dicom.tls_watch import TlsCertificateWatch
from appliance.dicom.verification import VerificationService
from appliance.dicomweb.archive import LocalArchive
from appliance.forward.component import Forwarder
from appliance.maintenance.hardware_components import hardware_components
from appliance.mpps.forwarder import MppsForwarder
from appliance.mpps.scp import MppsService
from appliance.mpps.web_provider import MppsWebProvider
from appliance.print.service import PrintService
from appliance.print.spool import PrintSpool
from appliance.query.scp import QueryRetrieveService
from appliance.update.watcher import UpdateStatusWatcher
from appliance.update.web_provider import FirmwareUploads
from appliance.web.component import WebComponent
from appliance.web.forward_provider import ForwardQueueProvider
from appliance.web.print_provider import SpoolPrintProvider
from appliance.worklist.components import worklist_components
from appliance.worklist.scp import WorklistService
from appliance.worklist.web_provider import WorklistWebProvider


def dicom_services(storage: StorageService | None = None,
                   worklist: WorklistService | None = None,
                   printing: PrintService | None = None,
                   mpps: MppsService | None = None,
                   query: QueryRetrieveService | None = None,
                   commitment: CommitmentService | None = None) -> list:
    """The DICOM services served on our one AE, in the order their contexts are listed.
    `storage` is the running Storage SCP component (a stopped one answers 0xA700);
    `worklist` the MWL SCP shared with the worklist components and the MPPS SCP (whose
    N-CREATE/N-SET come after print's: see engine_dispatch `_bound_for`); `query` the
    Query/Retrieve SCP over the storage component's instance store; `commitment` the
    running Storage Commitment component (a stopped one answers its N-ACTION 0x0110)."""
    worklist = worklist or WorklistService()
    storage = storage or StorageService(ApplianceConfig())
    return [VerificationService(), storage, worklist,
            printing or PrintService(PrintSpool(ApplianceConfig())),
            mpps or MppsService(None, worklist),
            query or QueryRetrieveService(None, lambda: storage.store),
            commitment or CommitmentService(ApplianceConfig())]


def build_components(config: ApplianceConfig, bus: EventBus,
                     runtime: Runtime | None = None) -> list[Component]:
    """The components in start order. `runtime` lets a component read health, or write a
    setting and ask for a live reload (see appliance.core.runtime)."""
    runtime = runtime or Runtime(bus)
    storage = StorageService(config, bus)
    worklist = WorklistService(config, bus)
    # print spool + printer status; Print SCP prints through it; a `pacs` printer stores its
    # Secondary Captures through the running storage component's instance store
    spool = PrintSpool(config, bus, store_source=lambda: storage.store)
    certificate = TlsCertificateWatch(config, bus)
    mpps = MppsService(config, worklist)
    # hashes each stored instance (the "storage" event); started before the DICOM server
    commitment = CommitmentService(config, bus)
    return [
        DataDirectoryMonitor(config, bus),
        storage,
        spool,
        commitment,
        EngineServer(config, dicom_services(storage, worklist, PrintService(spool), mpps,
                                            QueryRetrieveService(config, lambda: storage.store),
                                            commitment), bus),
        certificate,
        Forwarder(config, bus),
        MppsForwarder(config, mpps),
        *worklist_components(config, bus, worklist),
        *hardware_components(config, bus, runtime),
        UpdateStatusWatcher(config, bus),
        WebComponent(config, runtime, Providers(worklist=WorklistWebProvider(worklist),
                                                mpps=MppsWebProvider(mpps),
                                                queue=ForwardQueueProvider(config),
                                                printing=SpoolPrintProvider(spool),
                                                firmware=FirmwareUploads(config),
                                                tls_certificate=certificate,
                                                commitment=CommitmentWebProvider(commitment),
                                                dicomweb=LocalArchive(lambda: storage.store))),
    ]
