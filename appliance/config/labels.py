"""Configuration fields in words: the title (a short label), the help (its description) and
the unit of every key, read from the schema where they are written next to each field.

The one source of labels for the web forms, the front panel and the API (whose
`/api/v1/config/schema` is the same schema as JSON): nobody keeps a second list of names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from appliance.config.introspect import field_at, list_item, model_of, parse_key
from appliance.config.schema import ApplianceConfig


@dataclass(frozen=True)
class FieldLabel:
    """How one configuration key is shown to people."""

    key: str  # as written in the file: "dicom.acse_timeout", "peers[0].port"
    title: str  # "Association timeout"
    help: str  # the field's description
    unit: str = ""  # "seconds", "MB", ... or "" when the value has none

    def with_unit(self) -> str:
        """'Association timeout (seconds)'; the title alone when there is no unit."""
        return f"{self.title} ({self.unit})" if self.unit else self.title


def unit_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    return str(extra.get("unit", "")) if isinstance(extra, dict) else ""


def of_field(key: str, name: str, info: FieldInfo) -> FieldLabel:
    """The label of one field of a model (`name` is its own name, used when untitled)."""
    return FieldLabel(key, info.title or name, info.description or "", unit_of(info))


def field_info(key: str) -> FieldInfo:
    """The schema's field at `key` ('dicom.tls.port', 'peers[0].host'); KeyError if unknown."""
    try:
        info = field_at(ApplianceConfig, parse_key(key))[1]
    except ValueError:
        raise KeyError(key) from None
    if info is None:
        raise KeyError(key)
    return info


def label(key: str) -> FieldLabel:
    """The label of the configuration key `key`."""
    info = field_info(key)
    name = next(p for p in reversed(parse_key(key)) if isinstance(p, str))
    return of_field(key, name, info)


def title(key: str) -> str:
    """Just the title of `key`: 'dicom.ae_title' -> 'AE title'."""
    return label(key).title


def every_field() -> list[tuple[str, FieldInfo]]:
    """(key, field) of every key of the schema, sections and nested tables included (list
    entries as `peers[].port`)."""
    found: list[tuple[str, FieldInfo]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            found.append((prefix + name, info))
            item = list_item(info.annotation)
            sub = model_of(item if item is not None else info.annotation)
            if sub is not None:
                walk(sub, f"{prefix}{name}{'[]' if item is not None else ''}.")
    walk(ApplianceConfig, "")
    return found


def schema_labels() -> dict[str, dict[str, Any]]:
    """{key: {"title", "help", "unit"}} for every key, as the API serves it."""
    return {key: {"title": info.title or "", "help": info.description or "",
                  "unit": unit_of(info)} for key, info in every_field()}
