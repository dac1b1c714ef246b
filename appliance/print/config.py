"""[print] and [[printers]]: the Print Management SCP and the printer profiles it prints on.

Declared beside the print service; `appliance/config/schema.py` composes it into
`ApplianceConfig`. With no [[printers]] the appliance has one profile, "default", on the `file`
driver writing into `<data_dir>/print/output`, so a fresh box prints to files."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from appliance.config.base import (
    HOURS,
    PIXELS,
    SECONDS,
    Name,
    Section,
    check_ae_title,
    check_between,
    check_host,
    positive_seconds,
)

FILM_SIZE_IDS = ("8INX10IN", "8_5INX11IN", "10INX12IN", "10INX14IN", "11INX14IN", "11INX17IN",
                 "14INX14IN", "14INX17IN", "24CMX24CM", "24CMX30CM", "A4", "A3")
MEDIA = ("PAPER", "CLEAR FILM", "BLUE FILM", "MAMMO CLEAR FILM", "MAMMO BLUE FILM")


def check_film_size(value: str) -> str:
    if value not in FILM_SIZE_IDS:
        raise ValueError(f"{value!r} is not a Film Size ID: use one of {', '.join(FILM_SIZE_IDS)}")
    return value


def check_medium(value: str) -> str:
    if value not in MEDIA:
        raise ValueError(f"{value!r} is not a Medium Type: use one of {', '.join(MEDIA)}")
    return value


PYDICOM_UID_ROOT = "1.2.826.0.1.3680043.8.498."


def check_uid_root(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*(\.(0|[1-9][0-9]*))*\.", value) or len(value) > 40:
        raise ValueError(f"must be a UID root such as 1.2.826.0.1.3680043.8.498. (digits and "
                         f"dots, no leading zeros, ending in '.', at most 40 characters), "
                         f"got {value!r}")
    return value


def check_lookback_hours(value: float) -> float:
    if not 0 < value <= 8760:
        raise ValueError(f"must be more than 0 and at most 8760 hours (a year), got {value:g}")
    return float(value)


def check_optional_ae_title(value: str) -> str:
    return check_ae_title(value) if value else value


def check_cups_server(value: str) -> str:
    if value:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"must be HOST:PORT such as 127.0.0.1:631, got {value!r}")
        check_host(host)
    return value


def check_luminance(value: float) -> float:
    if not 0 < value <= 100000:
        raise ValueError(f"must be a luminance above 0 and at most 100000 cd/m², got {value:g}")
    return float(value)


OD_100 = {"unit": "OD/100"}
CD_M2 = {"unit": "cd/m²"}
FilmSize = Annotated[str, AfterValidator(check_film_size)]
Medium = Annotated[str, AfterValidator(check_medium)]
Density = Annotated[int, AfterValidator(check_between(0, 500))]


class PrinterProfileConfig(Section):
    """[[printers]]: one printer the box offers, with the driver that prints its films."""

    name: Name = Field(title="Name", description="Short name of the profile")
    driver: Literal["file", "cups", "dicom", "pacs", "sim"] = Field(
        "file", title="Driver", description="What prints the films")
    ae_title: Annotated[str, AfterValidator(check_optional_ae_title)] = Field(
        "", title="Own AE title",
        description="Extra called AE title answering as this printer; empty = none")
    printer_name: str = Field("", title="Printer name",
                              description="Printer Name reported by N-GET (default: name)")
    film_sizes: list[FilmSize] = Field(default_factory=lambda: list(FILM_SIZE_IDS),
                                       min_length=1, title="Film sizes",
                                       description="Film Size IDs accepted")
    default_film_size: FilmSize = Field("14INX17IN", title="Default film size",
                                        description="Film size when not asked")
    media: list[Medium] = Field(default_factory=lambda: list(MEDIA), min_length=1,
                                title="Media", description="Medium Types accepted")
    default_medium: Medium = Field("BLUE FILM", title="Default medium",
                                   description="Medium Type when not asked")
    dpi: Annotated[int, AfterValidator(check_between(50, 1200))] = Field(
        300, title="Resolution", json_schema_extra={"unit": "dpi"},
        description="Printer resolution, dots per inch")
    min_density: Density = Field(20, title="Least density", json_schema_extra=OD_100,
                                 description="Least density, hundredths of OD")
    max_density: Density = Field(300, title="Greatest density", json_schema_extra=OD_100,
                                 description="Greatest density, hundredths of OD")
    display_formats: list[Literal["STANDARD", "ROW", "COL"]] = Field(
        default_factory=lambda: ["STANDARD", "ROW", "COL"], min_length=1,
        title="Display formats", description="Image Display Formats accepted")
    color: bool = Field(False, title="Colour", description="Accept Basic Color Print Management")
    illumination: Annotated[float, AfterValidator(check_luminance)] = Field(
        2000.0, title="Illumination", json_schema_extra=CD_M2,
        description="Default Illumination, cd/m²")
    reflected_ambient_light: Annotated[float, AfterValidator(check_luminance)] = Field(
        10.0, title="Reflected ambient light", json_schema_extra=CD_M2,
        description="Default Reflected Ambient Light, cd/m²")
    directory: str = Field("", title="Output directory",
                           description="file driver: output directory "
                           "(default <data_dir>/print/output/<name>)")
    cups_queue: str = Field("", title="CUPS queue", description="cups driver: queue name")
    cups_server: Annotated[str, AfterValidator(check_cups_server)] = Field(
        "", title="CUPS server",
        description="cups driver: HOST:PORT of the CUPS server (default: the local one)")
    cups_format: Literal["pdf", "png"] = Field("pdf", title="CUPS document format",
                                               description="cups driver: document sent")
    peer: str = Field("", title="DICOM printer peer",
                      description="dicom driver: the DICOM printer (a [[peers]] name)")
    peer_status_interval: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        10.0, title="Printer status interval", json_schema_extra=SECONDS,
        description="dicom driver: seconds between Printer N-GETs to the DICOM printer")

    pacs_uid_root: Annotated[str, AfterValidator(check_uid_root)] = Field(
        PYDICOM_UID_ROOT, title="UID root",
        description="pacs driver: root the Secondary Capture UIDs are made "
        "under (your organisation's, ending in '.')")
    pacs_lookback_hours: Annotated[float, AfterValidator(check_lookback_hours)] = Field(
        24.0, title="Study look-back", json_schema_extra=HOURS,
        description="pacs driver: how old the calling AE's latest stored study may be "
        "to file a film with it when no worklist item matches, hours")

    @model_validator(mode="after")
    def _consistent(self) -> PrinterProfileConfig:
        if self.max_density <= self.min_density:
            raise ValueError(f"max_density ({self.max_density}) must be greater than "
                             f"min_density ({self.min_density})")
        if self.default_film_size not in self.film_sizes:
            raise ValueError(f"default_film_size {self.default_film_size} is not in film_sizes")
        if self.default_medium not in self.media:
            raise ValueError(f"default_medium {self.default_medium!r} is not in media")
        if self.driver == "cups" and not self.cups_queue:
            raise ValueError("the cups driver needs cups_queue")
        if self.driver == "dicom" and not self.peer:
            raise ValueError("the dicom driver needs peer (the DICOM printer, from [[peers]])")
        if self.driver == "pacs" and self.peer:
            raise ValueError("the pacs driver sends through the forwarder's [[destinations]]; "
                             "remove peer")
        return self


class PrintConfig(Section):
    """[print]: the Print Management SCP and its spool."""

    enabled: bool = Field(True, title="Print service", description="Offer Print Management")
    printer: str = Field("", title="Printer", description="Profile printing for our own AE title "
                         "(default: the first of [[printers]])")
    max_queue: Annotated[int, AfterValidator(check_between(1, 10000))] = Field(
        50, title="Most films waiting",
        description="Films waiting to print; more are refused (0xC602 queue full)")
    history: Annotated[int, AfterValidator(check_between(1, 1000000))] = Field(
        500, title="History length", description="Finished jobs kept in the history")
    reprint_keep: Annotated[int, AfterValidator(check_between(0, 10000))] = Field(
        20, title="Films kept for reprint",
        description="Finished jobs whose films are kept for a reprint")
    preview_px: Annotated[int, AfterValidator(check_between(32, 2048))] = Field(
        256, title="Preview size", json_schema_extra=PIXELS,
        description="Longest side of the preview kept per film, pixels")
    status_interval: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        2.0, title="Status check interval", json_schema_extra=SECONDS,
        description="Seconds between printer status checks")

    @field_validator("printer")
    @classmethod
    def _printer_name(cls, value: str) -> str:
        return value.strip()


def check_printers(printers: list[PrinterProfileConfig], known: dict
                   ) -> list[PrinterProfileConfig]:
    """[[printers]] against the sections before it (`known`: [dicom], [[peers]]): distinct
    names, peers that exist, extra AE titles distinct from ours and from each other."""
    names: set[str] = set()
    peers = [p.name for p in known.get("peers", [])]
    dicom = known.get("dicom")
    titles = {dicom.ae_title: "dicom.ae_title"} if dicom is not None else {}
    for index, profile in enumerate(printers):
        if profile.name in names:
            raise ValueError(f"printers[{index}].name {profile.name!r} is used by another "
                             "profile: every profile needs its own name")
        names.add(profile.name)
        if profile.driver == "pacs" and not known.get("destinations"):
            raise ValueError(f"printers[{index}] ({profile.name}) uses the pacs driver, which "
                             "sends films through the forwarder: add a [[destinations]] entry")
        if profile.peer and profile.peer not in peers:
            raise ValueError(f"printers[{index}].peer {profile.peer!r} is not one of the "
                             f"[[peers]] (known: {', '.join(peers) or 'none configured'})")
        if profile.ae_title:
            if profile.ae_title in titles:
                raise ValueError(f"printers[{index}].ae_title {profile.ae_title} is already "
                                 f"used by {titles[profile.ae_title]}")
            titles[profile.ae_title] = f"printers[{index}].ae_title"
    return printers


def check_print_section(section: PrintConfig, known: dict) -> PrintConfig:
    """[print] printer must name one of the [[printers]] (or "default" when there are none)."""
    names = [p.name for p in known.get("printers", [])] or ["default"]
    if section.printer and section.printer not in names:
        raise ValueError(f"printer {section.printer!r} is not one of the [[printers]] "
                         f"(known: {', '.join(names)})")
    return section


__all__ = ["FILM_SIZE_IDS", "MEDIA", "PrintConfig", "PrinterProfileConfig",
           "check_print_section", "check_printers"]
