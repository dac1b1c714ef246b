"""What every section of the schema is built from: the `Section` base (strict types, unknown
keys refused, values immutable), the shared validators and value types (AE title, port, host,
name, ...), and the units fields carry in `json_schema_extra` (`SECONDS`, `MB`, ...).

Each component declares its own section next to its code (`appliance/print/config.py`, ...)
from these; `appliance/config/schema.py` composes them into `ApplianceConfig`. Validators raise
`ValueError` with a sentence that reads well after "KEY: " in an error line, or `ValueProblems`
with one such sentence per problem when a value has several.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
)

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


def check_ip_network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError as exc:
        hint = " (host bits set)" if "host bits" in str(exc) else ""
        raise ValueError(f"must be an IP address or a network such as 192.168.1.0/24{hint}, "
                         f"got {value!r}") from None
    return value


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
