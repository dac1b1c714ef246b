"""Configuration fields in words: the title (a short label), the help (its description) and
the unit of every key, read from the schema where they are written next to each field.

The one source of labels for the web forms, the front panel and the API (whose
`/api/v1/config/schema` is the same schema as JSON): nobody keeps a second list of names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from appliance.config.introspect import list_item, model_of
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


_INDEX = re.compile(r"\[\d+\]")


def field_info(key: str) -> FieldInfo:
    """The schema's field at `key` ('dicom.tls.port', 'peers[0].host'); KeyError if unknown."""
    model: type[BaseModel] | None = ApplianceConfig
    info: FieldInfo | None = None
    for part in _INDEX.sub("", key).split("."):
        if model is None or part not in model.model_fields:
            raise KeyError(key)
        info = model.model_fields[part]
        model = model_of(list_item(info.annotation) or info.annotation)
    if info is None:
        raise KeyError(key)
    return info


def label(key: str) -> FieldLabel:
    """The label of the configuration key `key`."""
    return of_field(key, _INDEX.sub("", key).rsplit(".", 1)[-1], field_info(key))


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
