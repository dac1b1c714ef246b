"""Printer profiles from the configuration, and the printer driver each one drives: the
print service's DICOM drivers (`dicom`: dicom_printer.py, `pacs`: pacs_printer.py) or a
hardware one from hal.printer (`file`, `cups`, `sim`).

With no [[printers]] there is one profile, "default", on the `file` driver writing into
`<data_dir>/print/output/default`. The profile answering for our own AE title is `[print]
printer` (default: the first); a profile with its own `ae_title` answers for that title.
"""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.print.config import PrinterProfileConfig
from hal.printer import DRIVERS as HAL_DRIVERS
from hal.printer import Printer, PrinterError
from hal.printer import open_printer as open_hal_printer

log = logging.getLogger(__name__)

#: The driver names a `[[printers]]` profile may use.
DRIVERS = ("dicom", "pacs", *HAL_DRIVERS)


def open_printer(driver: str, name: str, **options) -> Printer:
    """The printer driver called `driver` with its options; a clear error for an unknown one."""
    if driver == "dicom":
        from appliance.print.dicom_printer import DicomPrinter
        return DicomPrinter(name, **options)
    if driver == "pacs":
        from appliance.print.pacs_printer import PacsPrinter
        return PacsPrinter(name, **options)
    if driver in HAL_DRIVERS:
        return open_hal_printer(driver, name, **options)
    raise PrinterError(f"unknown printer driver {driver!r}: use one of {', '.join(DRIVERS)}")


def printer_profiles(config: ApplianceConfig) -> list[PrinterProfileConfig]:
    return list(config.printers) or [PrinterProfileConfig(name="default")]


def profile_for(config: ApplianceConfig, called_aet: str) -> PrinterProfileConfig:
    """The profile answering to `called_aet` (an extra AE title, else the main profile)."""
    profiles = printer_profiles(config)
    called = called_aet.strip()
    for profile in profiles:
        if profile.ae_title and profile.ae_title == called:
            return profile
    wanted = config.print.printer
    return next((p for p in profiles if p.name == wanted), profiles[0])


def open_profile_printer(profile: PrinterProfileConfig, config: ApplianceConfig,
                         **hooks) -> Printer:
    """The printer driver of a profile, with its options resolved from the config.
    `hooks` (bus, store_source) reach the appliance-side half of the `pacs` driver."""
    data_dir = Path(config.device.data_dir)
    options: dict = {}
    if profile.driver == "file":
        options["directory"] = profile.directory or data_dir / "print" / "output" / profile.name
    elif profile.driver == "cups":
        options.update(queue=profile.cups_queue, server=profile.cups_server,
                       document_format=profile.cups_format)
    elif profile.driver == "dicom":
        peer = config.peer(profile.peer)
        options.update(host=peer.host, port=peer.port, called_aet=peer.ae_title,
                       calling_aet=config.dicom.ae_title,
                       status_every=profile.peer_status_interval)
        if peer.tls:  # TlsFileError (the file and the reason) when the key material is unusable
            from appliance.dicom.tls_client import client_context
            options["tls_context"] = client_context(config.dicom.tls)
    elif profile.driver == "pacs":
        from appliance.print.print_to_pacs import PrintToPacs
        bridge = PrintToPacs(config, profile, hooks.get("bus"), hooks.get("store_source"))
        options.update(bridge.hooks(), uid_root=profile.pacs_uid_root,
                       station_name=config.dicom.ae_title)
    return open_printer(profile.driver, profile.name, **options)
