"""[worklist] with [worklist.hl7] and [worklist.upstream]: the Modality Worklist SCP, its HL7
feeder and the upstream RIS it may copy.

Composed into `ApplianceConfig` by `appliance/config/schema.py`, where the check that the
upstream peer exists stays. The worklist attributes come from `keys.py`, which imports nothing.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from appliance.config.base import (
    DAYS,
    HOURS,
    KIB,
    SECONDS,
    AETitle,
    IPAddress,
    Port,
    Section,
    check_between,
    check_ip_network,
    check_modality,
    check_non_negative,
    positive_seconds,
)


def check_hl7_field_map(value: dict[str, str]) -> dict[str, str]:
    from appliance.worklist.keys import MAPPABLE_KEYWORDS

    for keyword, location in value.items():
        if keyword not in MAPPABLE_KEYWORDS:
            raise ValueError(f"{keyword!r} is not a worklist attribute the HL7 feeder can fill "
                             "(use a DICOM keyword such as PatientID or Modality)")
        if location and not re.fullmatch(r"[A-Z][A-Z0-9]{2}(\.[1-9][0-9]*){1,3}", location):
            raise ValueError(f"{keyword}: {location!r} is not an HL7 field location such as "
                             "PID.3 or OBR.27.4 (or \"\" to leave the attribute out)")
    return value


class WorklistHl7Config(Section):
    """[worklist.hl7]: the HL7 v2 (ORM^O01, OMI^O23) listener over MLLP."""

    enabled: bool = Field(False, title="Receive HL7 orders",
                          description="Listen for HL7 orders")
    bind: IPAddress = Field("0.0.0.0", title="Listen address",
                            description="Address the MLLP listener binds to")
    port: Port = Field(2575, title="Port", description="TCP port of the MLLP listener")
    field_map: Annotated[dict[str, str], AfterValidator(check_hl7_field_map)] = Field(
        default_factory=dict, title="HL7 field map", description="Overrides of the default "
        "field map: DICOM keyword -> HL7 location (SEG.FIELD[.COMPONENT[.SUBCOMPONENT]]), \"\" "
        "to drop one")
    allowed_hosts: list[Annotated[str, AfterValidator(check_ip_network)]] = Field(
        default_factory=list, title="Allowed senders", description="IP addresses or networks "
        "(CIDR) that may send HL7; a connection from any other host is closed at once and "
        "logged (empty: any host)")
    max_connections: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        32, title="Most connections", description="Most HL7 connections open at once; more "
        "are closed at once")
    max_connections_per_host: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        4, title="Most connections per host",
        description="Most HL7 connections open at once from one IP address")
    idle_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, title="Idle timeout", json_schema_extra=SECONDS, description="Seconds a "
        "connection may go without a complete message (or without reading its ACK) before it "
        "is closed")
    max_message_kb: Annotated[int, AfterValidator(check_between(1, 65536))] = Field(
        1024, title="Largest message", json_schema_extra=KIB, description="Largest HL7 "
        "message in KiB; a longer one gets an AR and the connection is closed")

    @field_validator("max_connections_per_host")
    @classmethod
    def _per_host(cls, value: int, info) -> int:
        total = info.data.get("max_connections")
        if total is not None and value > total:
            raise ValueError(f"max_connections_per_host ({value}) must not be more than "
                             f"max_connections ({total})")
        return value


class WorklistUpstreamConfig(Section):
    """[worklist.upstream]: copy the worklist of a RIS (an MWL SCP) into the local cache."""

    enabled: bool = Field(False, title="Copy a RIS worklist",
                          description="Poll the upstream worklist")
    peer: str = Field("", title="RIS peer",
                      description="Name of one of the [[peers]]: the RIS worklist SCP")
    interval: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        60.0, title="Poll interval", json_schema_extra=SECONDS,
        description="Seconds between two C-FIND polls")
    timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, title="Timeout", json_schema_extra=SECONDS,
        description="Seconds to wait for the RIS")
    days_ahead: Annotated[int, AfterValidator(check_between(0, 365))] = Field(
        1, title="Days ahead", json_schema_extra=DAYS,
        description="Poll items scheduled from today to this many days ahead")
    modality: str = Field("", title="Modality",
                          description="Poll only items of this modality (\"\" = all)")

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: str) -> str:
        return check_modality(value) if value else value


class WorklistConfig(Section):
    """[worklist]: the Modality Worklist SCP and its item lifecycle."""

    enabled: bool = Field(True, title="Worklist service",
                          description="Answer Modality Worklist C-FIND queries")
    max_answers: Annotated[int, AfterValidator(check_between(1, 100000))] = Field(
        1000, title="Most answers per query",
        description="Most matches returned for one query; the rest are left out")
    case_insensitive_names: bool = Field(
        False, title="Names match in any case",
        description="Match person names (PN) without regard to case")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, title="Allowed calling AE titles", description="When not empty, "
        "only these calling AE titles may query the worklist (others get 0x0124 Refused: Not "
        "Authorized and no answers); empty = any caller [dicom] accepts")
    own_station_only_aets: list[AETitle] = Field(
        default_factory=list, title="AE titles that see only their own items",
        description="Calling AE titles that see only the items scheduled for their own "
        "Scheduled Station AE Title")
    expire_after_hours: Annotated[float, AfterValidator(check_non_negative("expiry"))] = Field(
        24.0, title="Items expire after", json_schema_extra=HOURS,
        description="Hours after its scheduled start that an item expires (0 = never)")
    hl7: WorklistHl7Config = Field(default_factory=WorklistHl7Config, title="HL7 orders")
    upstream: WorklistUpstreamConfig = Field(default_factory=WorklistUpstreamConfig,
                                             title="Upstream worklist (RIS)")
