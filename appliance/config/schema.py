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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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


class PeerConfig(Section):
    """[[peers]]: a remote DICOM node we talk to."""

    name: Name = Field(description="Short name used by `appliance echo NAME` and routing")
    ae_title: AETitle = Field(description="The peer's AE title")
    host: Host = Field(description="Host name or IP address")
    port: Port = Field(104, description="The peer's DICOM port")


class HalConfig(Section):
    """[hal]: which hardware backend drives LEDs, panel, serial link and printers."""

    backend: Literal["sim", "pi"] = Field(
        "sim", description="'sim' for simulated hardware, 'pi' for the real board"
    )


class WebConfig(Section):
    """[web]: the local status and configuration page."""

    bind: IPAddress = Field("0.0.0.0", description="Address the web page binds to")
    port: Port = Field(8080, description="TCP port of the web page")


class LogConfig(Section):
    """[log]: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to the log"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ApplianceConfig(Section):
    """The whole `appliance.toml`."""

    device: DeviceConfig = Field(default_factory=DeviceConfig)
    dicom: DicomConfig = Field(default_factory=DicomConfig)
    peers: list[PeerConfig] = Field(default_factory=list)
    hal: HalConfig = Field(default_factory=HalConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    @field_validator("peers")
    @classmethod
    def _unique_peer_names(cls, peers: list[PeerConfig]) -> list[PeerConfig]:
        seen: set[str] = set()
        for peer in peers:
            if peer.name in seen:
                raise ValueError(f"peer name {peer.name!r} is used more than once")
            seen.add(peer.name)
        return peers

    def peer(self, name: str) -> PeerConfig | None:
        """The configured peer called `name`, or None."""
        return next((p for p in self.peers if p.name == name), None)
