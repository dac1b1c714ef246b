"""The one typed configuration schema of the appliance.

Every section of `appliance.toml` is a model here. The loader, `appliance config`, the web
forms and the front panel all read and validate through these models, so a value that one of
them accepts is accepted by all. Models are strict (a string is not an integer) and refuse
unknown keys. Validators raise `ValueError` with a sentence that reads well after
"KEY: " in an error line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from appliance.config import coercion_schema as coercion

AE_TITLE_MAX = 16


def check_ae_title(value: str) -> str:
    """Validate an AE title (PS3.5 AE VR) and return it without surrounding spaces."""
    if "\\" in value:
        raise ValueError("AE title must not contain a backslash")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("AE title must not contain control characters")
    if any(ord(ch) > 0x7E for ch in value):
        raise ValueError("AE title must use only ASCII characters")
    stripped = value.strip(" ")
    if not stripped:
        raise ValueError("AE title must not be empty or all spaces")
    if len(stripped) > AE_TITLE_MAX:
        raise ValueError(
            f"AE title must be at most {AE_TITLE_MAX} characters, got {len(stripped)}"
        )
    return stripped


def check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {value}")
    return value


def check_ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"must be an IPv4 or IPv6 address such as 0.0.0.0 or 127.0.0.1, got {value!r}"
        ) from None
    return value


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise ValueError(f"must be a host name or an IP address, got {value!r}")
    return value


def positive_seconds(limit: float):
    def check(value: float) -> float:
        if not 0 < value <= limit:
            raise ValueError(f"must be more than 0 and at most {limit:g} seconds, got {value:g}")
        return float(value)
    return check


def check_max_pdu(value: int) -> int:
    if value != 0 and not 4096 <= value <= 0xFFFFFFFF:
        raise ValueError(
            f"must be 0 (no limit) or between 4096 and 4294967295 bytes, got {value}"
        )
    return value


def check_max_associations(value: int) -> int:
    if not 1 <= value <= 256:
        raise ValueError(f"must be between 1 and 256, got {value}")
    return value


def check_between(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value
    return check


def check_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise ValueError(
            "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit,"
            f" got {value!r}"
        )
    return value


AETitle = Annotated[str, AfterValidator(check_ae_title)]
Port = Annotated[int, AfterValidator(check_port)]
IPAddress = Annotated[str, AfterValidator(check_ip_address)]
Host = Annotated[str, AfterValidator(check_host)]
Name = Annotated[str, AfterValidator(check_name)]


class Section(BaseModel):
    """Base of every section: strict types, unknown keys refused, values immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DeviceConfig(Section):
    """[device]: the box itself."""

    name: Name = Field("edge-appliance", description="Name of this box, shown on the status page")
    data_dir: str = Field(
        "var",
        description="Directory for everything that changes (/data on the box); "
        "a relative path is relative to the working directory",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("data directory must not be empty")
        if "\0" in value:
            raise ValueError("data directory must not contain a NUL character")
        return value


class DicomTlsConfig(Section):
    """[dicom.tls]: DICOM over TLS (BCP 195, TLS 1.2 or newer) on a second port, with the same
    association policy as the plain port."""

    enabled: bool = Field(False, description="Serve DICOM over TLS on its own port as well")
    port: Port = Field(2762, description="TCP port of the DICOM TLS listener")
    certificate: str = Field("", description="The box's certificate (PEM; its chain may "
                             "follow it in the same file)")
    private_key: str = Field("", description="The certificate's private key (PEM, "
                             "unencrypted, readable only by the appliance)")
    ca_certificates: str = Field("", description="The CAs whose client certificates are "
                                 "accepted, and which sign the peers we connect to (PEM bundle)")
    require_client_certificate: bool = Field(
        True, description="Refuse a TLS client that presents no certificate from those CAs")

    @model_validator(mode="after")
    def _files_when_enabled(self) -> DicomTlsConfig:
        if not self.enabled:
            return self
        missing = [key for key in ("certificate", "private_key") if not getattr(self, key)]
        if self.require_client_certificate and not self.ca_certificates:
            missing.append("ca_certificates")
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ValueError(f"TLS is enabled but {' and '.join(missing)} {verb} not set")
        return self


class DicomConfig(Section):
    """[dicom]: the one DICOM listener and its association policy."""

    ae_title: AETitle = Field("EDGEBOX", description="Our AE title (called AE title)")
    port: Port = Field(11112, description="TCP port of the DICOM listener")
    bind: IPAddress = Field("0.0.0.0", description="Address the DICOM listener binds to")
    strict_called_aet: bool = Field(
        True, description="Reject associations whose called AE title is not ours"
    )
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list,
        description="When not empty, only these calling AE titles may associate",
    )
    max_associations: Annotated[int, AfterValidator(check_max_associations)] = Field(
        10, description="Associations open at once; more are rejected (local limit exceeded)"
    )
    acse_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, description="Seconds to wait for association messages"
    )
    dimse_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, description="Seconds to wait for DIMSE messages"
    )
    network_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, description="Seconds an idle connection is kept before it is closed"
    )
    max_pdu: Annotated[int, AfterValidator(check_max_pdu)] = Field(
        262144, description="Largest PDU we accept, in bytes (0 = no limit)"
    )
    artim_timeout: Annotated[float, AfterValidator(positive_seconds(300))] = Field(
        10.0, description="Seconds a new connection has to send its whole A-ASSOCIATE-RQ "
        "before it is closed (ARTIM timer)"
    )
    max_pending_connections: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        64, description="Connections that have not yet sent their whole A-ASSOCIATE-RQ, from "
        "all hosts; more are closed at once (they never count against max_associations)"
    )
    max_pending_per_host: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        8, description="Such connections from one source address; more are closed at once, "
        "so one host cannot lock out the others"
    )
    tls: DicomTlsConfig = Field(default_factory=DicomTlsConfig)

    @model_validator(mode="after")
    def _tls_port_not_the_plain_one(self) -> DicomConfig:
        if self.tls.enabled and self.tls.port == self.port:
            raise ValueError(f"tls.port {self.tls.port} is the plain DICOM port too")
        return self


def check_ip_network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError as exc:
        hint = " (host bits set)" if "host bits" in str(exc) else ""
        raise ValueError(f"must be an IP address or a network such as 192.168.1.0/24{hint}, "
                         f"got {value!r}") from None
    return value


class WebConfig(Section):
    """[web]: the local status and configuration page."""

    bind: IPAddress = Field("0.0.0.0", description="Address the web page binds to")
    port: Port = Field(8080, description="TCP port of the web page")
    enabled: bool = Field(True, description="Serve the web page")
    https: bool = Field(False, description="Serve HTTPS with a certificate generated on first "
                        "start (data_dir/web/tls/)")
    public_status: bool = Field(False, description="Show the status dashboard without login "
                                "(configuration and actions always need it)")
    session_minutes: Annotated[int, AfterValidator(check_between(1, 1440))] = Field(
        30, description="Minutes without a request after which a login session ends")
    login_attempts: Annotated[int, AfterValidator(check_between(1, 100))] = Field(
        5, description="Failed logins from one address before it must wait (60 s, doubling)")
    echo_timeout: Annotated[float, AfterValidator(positive_seconds(120))] = Field(
        10.0, description="Seconds the peer 'Test' button waits for each step of a C-ECHO")
    trusted_proxies: list[Annotated[str, AfterValidator(check_ip_network)]] = Field(
        default_factory=list, description="Addresses or networks of reverse proxies in front "
        "of the web page: only a request from one of these may name its client in "
        "X-Forwarded-For (for logs and the login limit); empty: the header is ignored")


class LogConfig(Section):
    """[log]: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to the log"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def check_non_negative(what: str):
    def check(value: float) -> float:
        if value < 0:
            raise ValueError(f"{what} must not be negative, got {value:g}")
        return value
    return check


def check_percent(value: int) -> int:
    if not 1 <= value <= 100:
        raise ValueError(f"must be a percentage from 1 to 100, got {value}")
    return value


def check_uid(value: str) -> str:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", value) or len(value) > 64:
        raise ValueError(f"must be a DICOM UID (digits and dots, at most 64), got {value!r}")
    return value


def check_modality(value: str) -> str:
    if not re.fullmatch(r"[A-Z0-9_ ]{1,16}", value):
        raise ValueError(f"must be a modality code such as CT or MR (A-Z, 0-9, _), got {value!r}")
    return value


class StorageConfig(Section):
    """[storage]: the Storage SCP (C-STORE) and the local copies it keeps."""

    reserve_mb: Annotated[int, AfterValidator(check_non_negative("reserve"))] = Field(
        500, description="Free space (MB) kept in the data directory; below it C-STORE is "
        "refused with 0xA700 (Out of Resources)")
    duplicates: Literal["keep_first", "replace"] = Field(
        "keep_first", description="A SOP Instance UID received again: keep the stored copy "
        "(keep_first) or replace it and forward it again (replace)")
    retention_days: Annotated[float, AfterValidator(check_non_negative("retention"))] = Field(
        7.0, description="Local copies are deleted once every destination has them and they are "
        "older than this many days")
    high_water_percent: Annotated[int, AfterValidator(check_percent)] = Field(
        90, description="When the data directory is fuller than this, forwarded copies are "
        "deleted early, oldest first (never an unforwarded one)")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, description="When not empty, only these calling AE titles may "
        "store images (others get 0x0124 Refused: Not Authorized); empty = any caller "
        "[dicom] accepts")


class DestinationConfig(Section):
    """[[destinations]]: a peer (from [[peers]]) that receives every stored image routed to it."""

    peer: Name = Field(description="Name of one of the [[peers]]")
    batch_size: Annotated[int, AfterValidator(check_between(1, 1000))] = Field(
        50, description="Instances sent over one association")
    retry_initial: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        5.0, description="Seconds before the first retry after a failure")
    retry_max: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        300.0, description="Longest wait between retries, seconds (the wait doubles up to it)")
    max_age_hours: Annotated[float, AfterValidator(positive_seconds(8760))] = Field(
        168.0, description="An instance not delivered after this many hours is marked failed "
        "(kept; `appliance queue retry` sends it again)")
    timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, description="Seconds to wait for the peer's answers")

    @field_validator("retry_max")
    @classmethod
    def _max_not_below_initial(cls, value: float, info) -> float:
        initial = info.data.get("retry_initial")
        if initial is not None and value < initial:
            raise ValueError(f"retry_max ({value:g}) must not be less than retry_initial "
                             f"({initial:g})")
        return value


class RouteConfig(Section):
    """[[routes]]: which stored images go to which destinations. With no routes, every image
    goes to every destination. Each non-empty list must match (a list matches any of its values);
    an image goes to the destinations of every route it matches. set/remove/prefix/deidentify
    change the copy sent (appliance/forward/coercion.py)."""

    destinations: list[Name] = Field(description="Peer names of [[destinations]]",
                                     min_length=1)
    calling_aets: list[AETitle] = Field(default_factory=list,
                                        description="Calling AE titles that match")
    modalities: list[Annotated[str, AfterValidator(check_modality)]] = Field(
        default_factory=list, description="Modalities (0008,0060) that match")
    sop_classes: list[Annotated[str, AfterValidator(check_uid)]] = Field(
        default_factory=list, description="SOP Class UIDs that match")
    set: coercion.CoercionSet = Field(default_factory=dict, description=coercion.SET_HELP)
    remove: coercion.CoercionRemove = Field(default_factory=list,
                                            description=coercion.REMOVE_HELP)
    prefix: coercion.CoercionPrefix = Field(default_factory=dict,
                                            description=coercion.PREFIX_HELP)
    deidentify: bool = Field(False, description=coercion.DEIDENTIFY_HELP)
    one_rule_per_keyword = model_validator(mode="after")(coercion.check_route_rules)


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

    enabled: bool = Field(False, description="Listen for HL7 orders")
    bind: IPAddress = Field("0.0.0.0", description="Address the MLLP listener binds to")
    port: Port = Field(2575, description="TCP port of the MLLP listener")
    field_map: Annotated[dict[str, str], AfterValidator(check_hl7_field_map)] = Field(
        default_factory=dict, description="Overrides of the default field map: DICOM keyword "
        "-> HL7 location (SEG.FIELD[.COMPONENT[.SUBCOMPONENT]]), \"\" to drop one")
    allowed_hosts: list[Annotated[str, AfterValidator(check_ip_network)]] = Field(
        default_factory=list, description="IP addresses or networks (CIDR) that may send HL7; "
        "a connection from any other host is closed at once and logged (empty: any host)")
    max_connections: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        32, description="Most HL7 connections open at once; more are closed at once")
    max_connections_per_host: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        4, description="Most HL7 connections open at once from one IP address")
    idle_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, description="Seconds a connection may go without a complete message (or without "
        "reading its ACK) before it is closed")
    max_message_kb: Annotated[int, AfterValidator(check_between(1, 65536))] = Field(
        1024, description="Largest HL7 message in KiB; a longer one gets an AR and the "
        "connection is closed")

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

    enabled: bool = Field(False, description="Poll the upstream worklist")
    peer: str = Field("", description="Name of one of the [[peers]]: the RIS worklist SCP")
    interval: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        60.0, description="Seconds between two C-FIND polls")
    timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, description="Seconds to wait for the RIS")
    days_ahead: Annotated[int, AfterValidator(check_between(0, 365))] = Field(
        1, description="Poll items scheduled from today to this many days ahead")
    modality: str = Field("", description="Poll only items of this modality (\"\" = all)")

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: str) -> str:
        return check_modality(value) if value else value


class WorklistConfig(Section):
    """[worklist]: the Modality Worklist SCP and its item lifecycle."""

    enabled: bool = Field(True, description="Answer Modality Worklist C-FIND queries")
    max_answers: Annotated[int, AfterValidator(check_between(1, 100000))] = Field(
        1000, description="Most matches returned for one query; the rest are left out")
    case_insensitive_names: bool = Field(
        False, description="Match person names (PN) without regard to case")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, description="When not empty, only these calling AE titles may "
        "query the worklist (others get 0x0124 Refused: Not Authorized and no answers); "
        "empty = any caller [dicom] accepts")
    own_station_only_aets: list[AETitle] = Field(
        default_factory=list, description="Calling AE titles that see only the items scheduled "
        "for their own Scheduled Station AE Title")
    expire_after_hours: Annotated[float, AfterValidator(check_non_negative("expiry"))] = Field(
        24.0, description="Hours after its scheduled start that an item expires (0 = never)")
    hl7: WorklistHl7Config = Field(default_factory=WorklistHl7Config)
    upstream: WorklistUpstreamConfig = Field(default_factory=WorklistUpstreamConfig)


from appliance.config import print_schema  # noqa: E402 - it needs Section etc. from above
from appliance.config.hal_schema import (  # noqa: E402 - as print_schema
    ConsoleConfig,
    HalConfig,
    NetworkConfig,
)
from appliance.config.peer_schema import PeerConfig, check_dimse_peer  # noqa: E402 - as print_schema
from appliance.config.services_schema import (  # noqa: E402 - as print_schema
    MppsConfig,
    QueryRetrieveConfig,
    StorageCommitmentConfig,
)


class ApplianceConfig(Section):
    """The whole `appliance.toml`."""

    device: DeviceConfig = Field(default_factory=DeviceConfig)
    dicom: DicomConfig = Field(default_factory=DicomConfig)
    peers: list[PeerConfig] = Field(default_factory=list)
    hal: HalConfig = Field(default_factory=HalConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    destinations: list[DestinationConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    worklist: WorklistConfig = Field(default_factory=WorklistConfig)
    mpps: MppsConfig = Field(default_factory=MppsConfig)
    storage_commitment: StorageCommitmentConfig = Field(
        default_factory=StorageCommitmentConfig)
    query_retrieve: QueryRetrieveConfig = Field(default_factory=QueryRetrieveConfig)
    printers: list[print_schema.PrinterProfileConfig] = Field(default_factory=list)
    print: print_schema.PrintConfig = Field(default_factory=print_schema.PrintConfig)

    @field_validator("printers")
    @classmethod
    def _printers_consistent(cls, printers, info):
        return print_schema.check_printers(printers, info.data)

    @field_validator("print")
    @classmethod
    def _print_names_a_profile(cls, section, info):
        return print_schema.check_print_section(section, info.data)

    @field_validator("destinations")
    @classmethod
    def _destinations_name_peers(cls, destinations: list[DestinationConfig], info
                                 ) -> list[DestinationConfig]:
        peers = [p.name for p in info.data.get("peers", [])]
        seen: set[str] = set()
        for index, dest in enumerate(destinations):
            if dest.peer not in peers:
                known = ", ".join(peers) or "none configured"
                raise ValueError(f"destinations[{index}]: peer {dest.peer!r} is not one of the "
                                 f"[[peers]] (known: {known})")
            if dest.peer in seen:
                raise ValueError(f"peer {dest.peer!r} is a destination more than once")
            seen.add(dest.peer)
        return destinations

    @field_validator("routes")
    @classmethod
    def _routes_name_destinations(cls, routes: list[RouteConfig], info) -> list[RouteConfig]:
        names = [d.peer for d in info.data.get("destinations", [])]
        for index, route in enumerate(routes):
            for name in route.destinations:
                if name not in names:
                    known = ", ".join(names) or "none configured"
                    raise ValueError(f"routes[{index}]: {name!r} is not one of the "
                                     f"[[destinations]] (known: {known})")
        return routes

    @field_validator("worklist")
    @classmethod
    def _worklist_upstream_peer(cls, worklist: WorklistConfig, info) -> WorklistConfig:
        upstream = worklist.upstream
        peers = [p.name for p in info.data.get("peers", [])]
        if upstream.enabled and upstream.peer not in peers:
            known = ", ".join(peers) or "none configured"
            raise ValueError(f"upstream.peer {upstream.peer!r} is not one of the [[peers]] "
                             f"(known: {known})")
        if upstream.enabled:
            check_dimse_peer(upstream.peer, info.data.get("peers", []), "upstream.peer")
        return worklist

    @field_validator("mpps")
    @classmethod
    def _mpps_forward_to_peers(cls, mpps: MppsConfig, info) -> MppsConfig:
        peers = [p.name for p in info.data.get("peers", [])]
        for index, name in enumerate(mpps.forward_to):
            if name not in peers:
                known = ", ".join(peers) or "none configured"
                raise ValueError(f"forward_to[{index}]: {name!r} is not one of the [[peers]] "
                                 f"(known: {known})")
            if name in mpps.forward_to[:index]:
                raise ValueError(f"forward_to[{index}]: peer {name!r} is named more than once")
            check_dimse_peer(name, info.data.get("peers", []), f"forward_to[{index}]")
        return mpps

    @field_validator("peers")
    @classmethod
    def _unique_peer_names(cls, peers: list[PeerConfig]) -> list[PeerConfig]:
        seen: set[str] = set()
        for peer in peers:
            if peer.name in seen:
                raise ValueError(f"peer name {peer.name!r} is used more than once")
            seen.add(peer.name)
        return peers

    @field_validator("peers")
    @classmethod
    def _tls_peers_have_key_material(cls, peers: list[PeerConfig], info) -> list[PeerConfig]:
        dicom = info.data.get("dicom")
        tls = dicom.tls if dicom is not None else None
        for index, peer in enumerate(peers):
            if not peer.tls or tls is None:
                continue
            missing = [key for key in ("certificate", "private_key", "ca_certificates")
                       if not getattr(tls, key)]
            if missing:
                raise ValueError(f"peers[{index}] ({peer.name}): tls = true needs [dicom.tls] "
                                 f"{', '.join(missing)} (the certificate we present and the CAs "
                                 "the peer's certificate is checked against)")
        return peers

    def peer(self, name: str) -> PeerConfig | None:
        """The configured peer called `name`, or None."""
        return next((p for p in self.peers if p.name == name), None)

    def tls_for(self, peer: PeerConfig) -> DicomTlsConfig | None:
        """The key material for associations to `peer`: `[dicom.tls]` when the peer has
        `tls = true`, None for a plain one."""
        return self.dicom.tls if peer.tls else None
