"""The one typed configuration schema of the appliance.

Every section of `appliance.toml` is a model here. The loader, `appliance config`, the web
forms and the front panel all read and validate through these models, so a value that one of
them accepts is accepted by all. Models are strict (a string is not an integer) and refuse
unknown keys. Validators raise `ValueError` with a sentence that reads well after
"KEY: " in an error line, or `ValueProblems` with one such sentence per problem when a value
has several.

Every field carries a `title` (a short label in words) and a `description` (the help), and a
field with a unit says it in `json_schema_extra` (`SECONDS`, `MB`, ...): the web forms, the
front panel and the API's schema all read them from here (appliance/config/labels.py).
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
from appliance.core.errors import ValueProblems

AE_TITLE_MAX = 16

# Units of fields, as `json_schema_extra`: shown beside the input and in the API's schema.
SECONDS = {"unit": "seconds"}
MINUTES = {"unit": "minutes"}
HOURS = {"unit": "hours"}
DAYS = {"unit": "days"}
MB = {"unit": "MB"}
KIB = {"unit": "KiB"}
BYTES = {"unit": "bytes"}
PERCENT = {"unit": "%"}
PIXELS = {"unit": "pixels"}


def refuse(problems: list[str]) -> None:
    """Raise the problems found in one value (nothing when there are none)."""
    if len(problems) == 1:
        raise ValueError(problems[0])
    if problems:
        raise ValueProblems(problems)


def check_ae_title(value: str) -> str:
    """Validate an AE title (PS3.5 AE VR) and return it without surrounding spaces; every
    problem is named, not only the first."""
    problems = []
    if "\\" in value:
        problems.append("AE title must not contain a backslash")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        problems.append("AE title must not contain control characters")
    if any(ord(ch) > 0x7E for ch in value):
        problems.append("AE title must use only ASCII characters")
    stripped = value.strip(" ")
    if not stripped:
        problems.append("AE title must not be empty or all spaces")
    if len(stripped) > AE_TITLE_MAX:
        problems.append(f"AE title must be at most {AE_TITLE_MAX} characters, "
                        f"got {len(stripped)}")
    refuse(problems)
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
    problems = []
    if not 1 <= len(value) <= 64:
        problems.append(f"must be 1 to 64 characters long, got {len(value)}")
    if value and not value[0].isascii() or value and not value[0].isalnum():
        problems.append(f"must start with a letter or digit, got {value[:1]!r}")
    bad = sorted({ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch in "_.-"))})
    if bad:
        problems.append(f"may hold only letters, digits, '.', '_' and '-', not "
                        f"{' '.join(repr(ch) for ch in bad)}")
    refuse(problems)
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

    name: Name = Field("edge-appliance", title="Box name",
                       description="Name of this box, shown on the status page")
    data_dir: str = Field(
        "var", title="Data directory",
        description="Directory for everything that changes (/data on the box); "
        "a relative path is relative to the working directory",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_not_empty(cls, value: str) -> str:
        problems = []
        if not value.strip():
            problems.append("data directory must not be empty")
        if "\0" in value:
            problems.append("data directory must not contain a NUL character")
        refuse(problems)
        return value


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

    bind: IPAddress = Field("0.0.0.0", title="Listen address",
                            description="Address the web page binds to")
    port: Port = Field(8080, title="Port", description="TCP port of the web page")
    enabled: bool = Field(True, title="Web page", description="Serve the web page")
    https: bool = Field(False, title="HTTPS", description="Serve HTTPS with a certificate "
                        "generated on first start (data_dir/web/tls/)")
    public_status: bool = Field(False, title="Status page without login", description="Show "
                                "the status dashboard without login (configuration and actions "
                                "always need it)")
    session_minutes: Annotated[int, AfterValidator(check_between(1, 1440))] = Field(
        30, title="Session length", json_schema_extra=MINUTES,
        description="Minutes without a request after which a login session ends")
    login_attempts: Annotated[int, AfterValidator(check_between(1, 100))] = Field(
        5, title="Login attempts",
        description="Failed logins from one address before it must wait (60 s, doubling)")
    echo_timeout: Annotated[float, AfterValidator(positive_seconds(120))] = Field(
        10.0, title="Test (C-ECHO) timeout", json_schema_extra=SECONDS,
        description="Seconds the peer 'Test' button waits for each step of a C-ECHO")
    trusted_proxies: list[Annotated[str, AfterValidator(check_ip_network)]] = Field(
        default_factory=list, title="Trusted reverse proxies",
        description="Addresses or networks of reverse proxies in front "
        "of the web page: only a request from one of these may name its client in "
        "X-Forwarded-For (for logs and the login limit); empty: the header is ignored")


class LogConfig(Section):
    """[log]: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", title="Log level", description="Lowest level written to the log"
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
        500, title="Reserved free space", json_schema_extra=MB,
        description="Free space (MB) kept in the data directory; below it C-STORE is "
        "refused with 0xA700 (Out of Resources)")
    duplicates: Literal["keep_first", "replace"] = Field(
        "keep_first", title="Duplicate images",
        description="A SOP Instance UID received again: keep the stored copy "
        "(keep_first) or replace it and forward it again (replace)")
    retention_days: Annotated[float, AfterValidator(check_non_negative("retention"))] = Field(
        7.0, title="Keep local copies for", json_schema_extra=DAYS,
        description="Local copies are deleted once every destination has them and they are "
        "older than this many days")
    high_water_percent: Annotated[int, AfterValidator(check_percent)] = Field(
        90, title="Clean-up threshold", json_schema_extra=PERCENT,
        description="When the data directory is fuller than this, forwarded copies are "
        "deleted early, oldest first (never an unforwarded one)")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, title="Allowed calling AE titles",
        description="When not empty, only these calling AE titles may store images (others "
        "get 0x0124 Refused: Not Authorized); empty = any caller [dicom] accepts")


class DestinationConfig(Section):
    """[[destinations]]: a peer (from [[peers]]) that receives every stored image routed to it."""

    peer: Name = Field(title="Peer", description="Name of one of the [[peers]]")
    batch_size: Annotated[int, AfterValidator(check_between(1, 1000))] = Field(
        50, title="Batch size", description="Instances sent over one association")
    retry_initial: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        5.0, title="First retry after", json_schema_extra=SECONDS,
        description="Seconds before the first retry after a failure")
    retry_max: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        300.0, title="Longest retry wait", json_schema_extra=SECONDS,
        description="Longest wait between retries, seconds (the wait doubles up to it)")
    max_age_hours: Annotated[float, AfterValidator(positive_seconds(8760))] = Field(
        168.0, title="Give up after", json_schema_extra=HOURS,
        description="An instance not delivered after this many hours is marked failed "
        "(kept; `appliance queue retry` sends it again)")
    timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, title="Timeout", json_schema_extra=SECONDS,
        description="Seconds to wait for the peer's answers")

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

    destinations: list[Name] = Field(title="Destinations",
                                     description="Peer names of [[destinations]]",
                                     min_length=1)
    calling_aets: list[AETitle] = Field(default_factory=list, title="Calling AE titles",
                                        description="Calling AE titles that match")
    modalities: list[Annotated[str, AfterValidator(check_modality)]] = Field(
        default_factory=list, title="Modalities",
        description="Modalities (0008,0060) that match")
    sop_classes: list[Annotated[str, AfterValidator(check_uid)]] = Field(
        default_factory=list, title="SOP classes", description="SOP Class UIDs that match")
    set: coercion.CoercionSet = Field(default_factory=dict, title="Set attributes",
                                      description=coercion.SET_HELP)
    remove: coercion.CoercionRemove = Field(default_factory=list, title="Remove attributes",
                                            description=coercion.REMOVE_HELP)
    prefix: coercion.CoercionPrefix = Field(default_factory=dict, title="Prefix attributes",
                                            description=coercion.PREFIX_HELP)
    deidentify: bool = Field(False, title="De-identify",
                             description=coercion.DEIDENTIFY_HELP)
    one_rule_per_keyword = model_validator(mode="after")(coercion.check_route_rules)


from appliance.config import print_schema  # noqa: E402 - it needs Section etc. from above
from appliance.config.dicom_schema import (  # noqa: E402, F401 - as print_schema; re-exported
    DicomConfig,
    DicomTlsConfig,
)
from appliance.config.hal_schema import (  # noqa: E402 - as print_schema
    ConsoleConfig,
    HalConfig,
    NetworkConfig,
)
from appliance.config.peer_schema import (  # noqa: E402 - as print_schema
    PeerConfig,
    check_dimse_peer,
)
from appliance.config.services_schema import (  # noqa: E402 - as print_schema
    MppsConfig,
    QueryRetrieveConfig,
    StorageCommitmentConfig,
)
from appliance.config.worklist_schema import (  # noqa: E402, F401 - as print_schema; re-exported
    WorklistConfig,
    WorklistHl7Config,
    WorklistUpstreamConfig,
    check_hl7_field_map,
)


class ApplianceConfig(Section):
    """The whole `appliance.toml`."""

    device: DeviceConfig = Field(default_factory=DeviceConfig, title="Device")
    dicom: DicomConfig = Field(default_factory=DicomConfig, title="DICOM")
    peers: list[PeerConfig] = Field(default_factory=list, title="Peers")
    hal: HalConfig = Field(default_factory=HalConfig, title="Hardware")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, title="Serial console")
    network: NetworkConfig = Field(default_factory=NetworkConfig, title="Network")
    web: WebConfig = Field(default_factory=WebConfig, title="Web page")
    log: LogConfig = Field(default_factory=LogConfig, title="Logging")
    storage: StorageConfig = Field(default_factory=StorageConfig, title="Storage")
    destinations: list[DestinationConfig] = Field(default_factory=list, title="Destinations")
    routes: list[RouteConfig] = Field(default_factory=list, title="Routes")
    worklist: WorklistConfig = Field(default_factory=WorklistConfig, title="Worklist")
    mpps: MppsConfig = Field(default_factory=MppsConfig, title="MPPS")
    storage_commitment: StorageCommitmentConfig = Field(
        default_factory=StorageCommitmentConfig, title="Storage Commitment")
    query_retrieve: QueryRetrieveConfig = Field(default_factory=QueryRetrieveConfig,
                                                title="Query/Retrieve")
    printers: list[print_schema.PrinterProfileConfig] = Field(default_factory=list,
                                                              title="Printers")
    print: print_schema.PrintConfig = Field(default_factory=print_schema.PrintConfig,
                                            title="Print")

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
