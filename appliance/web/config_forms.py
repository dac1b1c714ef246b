"""Configuration forms generated from the one schema (appliance/config/schema.py), and the
writes behind them.

Every section model becomes a form: one input per field, labelled by its `Field(title=...)`
with its unit, explained by its `Field(description=...)` (both read through
appliance/config/labels.py, the one source of labels), typed by its annotation (checkbox,
number, choice, password for secrets, comma list). Lists of tables (peers, destinations,
routes) become one small form per entry plus an "add" form. A submission is validated by the
same schema as the file; refusals come back as one message per problem, every problem of a key
shown next to its input.

One changed value goes through `editor.set_value`, several through `editor.set_values` (the same
steps: parse, assign, validate the whole file, write atomically), so either all of a form is
written or none of it.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr

from appliance.config import editor, labels
from appliance.config.introspect import list_item, model_of, strip_annotation
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class FieldSpec:
    """One input of a generated form."""

    key: str  # full key, e.g. "dicom.ae_title" or "peers[0].port"
    name: str  # the field's own name, used as the input name
    kind: str  # text, number, checkbox, select, password, list, mapping
    value: str
    description: str = ""
    required: bool = False
    choices: list[str] = field(default_factory=list)
    step: str = ""
    errors: list[str] = field(default_factory=list)
    label: str = ""  # the schema's title ('Largest PDU'); the key is shown beside it
    unit: str = ""  # 'seconds', 'MB', ... from the schema; '' when none

    @property
    def error(self) -> str:
        """All problems of this input in one line ('' when there are none)."""
        return "; ".join(self.errors)


@dataclass
class FormSpec:
    """One form: a section model at `prefix` (e.g. "hal.leds" or "peers[1]")."""

    prefix: str
    title: str
    description: str
    fields: list[FieldSpec]
    errors: list[str] = field(default_factory=list)


@dataclass
class SectionSpec:
    """A top-level key of the file: a table with forms, or a list of tables with entries."""

    name: str
    description: str
    is_list: bool
    forms: list[FormSpec]
    add_form: FormSpec | None = None
    title: str = ""  # the section's title in words ('Storage Commitment')


def sections() -> list[str]:
    return list(ApplianceConfig.model_fields)


def section_titles() -> dict[str, str]:
    """{section key: its title in words} in file order, for the section navigation."""
    return {name: labels.title(name) for name in sections()}


def is_list_section(name: str) -> bool:
    return model_of(list_item(ApplianceConfig.model_fields[name].annotation)) is not None


def section_spec(config: ApplianceConfig, name: str) -> SectionSpec:
    info = ApplianceConfig.model_fields[name]
    annotation = info.annotation
    item_model = model_of(list_item(annotation))
    if item_model is not None:
        entries = getattr(config, name)
        forms = [form_for(item_model, f"{name}[{i}]", entry, title=_entry_title(entry, i))
                 for i, entry in enumerate(entries)]
        add = form_for(item_model, f"{name}[{len(entries)}]", None,
                       title=f"Add to {labels.title(name)}")
        return SectionSpec(name, _doc(item_model), True, forms, add, title=labels.title(name))
    model = model_of(annotation)
    return SectionSpec(name, _doc(model), False, _forms_of(model, name, getattr(config, name)),
                       title=labels.title(name))


def _forms_of(model: type[BaseModel], prefix: str, instance: BaseModel) -> list[FormSpec]:
    forms = [form_for(model, prefix, instance, title=labels.title(prefix))]
    for fname, info in model.model_fields.items():
        sub = model_of(info.annotation)
        if sub is not None:
            forms += _forms_of(sub, f"{prefix}.{fname}", getattr(instance, fname))
    return forms


def form_for(model: type[BaseModel], prefix: str, instance: BaseModel | None,
             title: str | None = None) -> FormSpec:
    fields = []
    for fname, info in model.model_fields.items():
        if model_of(info.annotation) is not None:
            continue
        value = getattr(instance, fname) if instance is not None else (
            None if info.is_required() else info.get_default(call_default_factory=True))
        fields.append(_field_spec(f"{prefix}.{fname}", fname, info, value))
    return FormSpec(prefix, title or prefix, _doc(model), fields)


def _field_spec(key: str, name: str, info: Any, value: Any) -> FieldSpec:
    base = strip_annotation(info.annotation)
    text = labels.of_field(key, name, info)
    spec = FieldSpec(key, name, "text", "", text.help, info.is_required(), label=text.title,
                     unit=text.unit)
    if base is bool:
        spec.kind, spec.value = "checkbox", "true" if value else ""
    elif base is SecretStr:
        spec.kind = "password"
        spec.description = (spec.description + " (leave empty to keep the current value)").strip()
    elif get_origin(base) is Literal:
        spec.kind, spec.choices = "select", [str(c) for c in get_args(base)]
        spec.value = "" if value is None else str(value)
    elif base in (int, float):
        spec.kind, spec.step = "number", "1" if base is int else "any"
        spec.value = "" if value is None else f"{value:g}" if base is float else str(value)
    elif get_origin(base) is list:
        spec.kind, spec.value = "list", ", ".join(str(v) for v in value or [])
        spec.description = (spec.description + " (comma-separated)").strip()
    elif get_origin(base) is dict:
        spec.kind = "mapping"
        spec.value = "\n".join(f"{k} = {v}" for k, v in (value or {}).items())
        spec.description = (spec.description + " (one KEY = VALUE per line)").strip()
    else:
        spec.value = "" if value is None else str(value)
    return spec


def _entry_title(entry: BaseModel, index: int) -> str:
    label = getattr(entry, "name", None) or getattr(entry, "peer", None)
    return f"#{index + 1}" + (f" {label}" if label else "")


def _doc(model: type[BaseModel] | None) -> str:
    return ((model.__doc__ or "").strip().splitlines() or [""])[0] if model else ""


# -- reading a submission ------------------------------------------------------------------


def parse_submission(form: FormSpec, values: dict[str, list[str]]) -> dict[str, Any]:
    """The changes a submitted form asks for, as {key: TOML value}; raises ConfigError (one
    line per bad input) for values that cannot even be read as their type."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for spec in form.fields:
        if spec.name not in values:
            continue  # not part of this submission: left as it is
        submitted = values[spec.name]
        try:
            value = _read(spec, submitted)
        except ValueError as exc:
            problems.append(f"web form: {spec.key}: {exc}")
            continue
        if value is _UNCHANGED:
            continue
        if value != _current(spec):
            changes[spec.key] = value
    if problems:
        raise ConfigError(problems)
    return changes


def parse_new_entry(form: FormSpec, values: dict[str, list[str]]) -> dict[str, Any]:
    """A new list entry from an add form: the fields given (empty ones take their default)."""
    entry: dict[str, Any] = {}
    problems: list[str] = []
    for spec in form.fields:
        submitted = values.get(spec.name, [])
        if spec.kind != "checkbox" and not "".join(submitted).strip():
            if spec.required:
                problems.append(f"web form: {spec.key}: required")
            continue
        try:
            value = _read(spec, submitted)
        except ValueError as exc:
            problems.append(f"web form: {spec.key}: {exc}")
            continue
        if value is not _UNCHANGED:
            entry[spec.name] = value
    if problems:
        raise ConfigError(problems)
    return entry


_UNCHANGED = object()


def _read(spec: FieldSpec, submitted: list[str]) -> Any:
    if spec.kind == "checkbox":
        return "true" in submitted
    raw = submitted[-1] if submitted else ""
    if spec.kind == "password":
        return raw if raw else _UNCHANGED
    if spec.kind == "mapping":
        mapping: dict[str, str] = {}
        for line in raw.splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise ValueError(f"expected KEY = VALUE, got {line.strip()!r}")
            k, v = line.split("=", 1)
            mapping[k.strip()] = v.strip().strip('"')
        return mapping
    return editor.coerce(editor.field_annotation(editor.parse_key(spec.key)), raw)


def _current(spec: FieldSpec) -> Any:
    if spec.kind == "checkbox":
        return spec.value == "true"
    try:
        return _read(spec, [spec.value])
    except ValueError:
        return None


# -- writing -------------------------------------------------------------------------------


def file_data(path: Path) -> dict[str, Any]:
    """The file as plain data ({} when it does not exist yet)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_form_changes(path: Path, form: FormSpec, changes: dict[str, Any],
                       values: dict[str, list[str]]) -> ApplianceConfig | None:
    """Write a form's changes: one through `editor.set_value`, several at once."""
    if not changes:
        return None
    if len(changes) == 1:
        key = next(iter(changes))
        spec = next(s for s in form.fields if s.key == key)
        if spec.kind not in ("checkbox", "mapping", "password"):
            return editor.set_value(path, key, (values.get(spec.name) or [""])[-1])
    return editor.set_values(path, changes)


def split_problems(exc: ConfigError) -> list[tuple[str, str]]:
    """ConfigError lines 'ORIGIN: KEY: REASON' as (key, reason)."""
    result = []
    for line in exc.problems:
        parts = line.split(": ", 2)
        if len(parts) == 3:
            result.append((parts[1], parts[2]))
        else:
            result.append(("", line))
    return result


def attach_errors(forms: list[FormSpec], exc: ConfigError) -> None:
    """Put each problem next to its input, or at the top of the form it belongs to."""
    for key, reason in split_problems(exc):
        placed = False
        for form in forms:
            for spec in form.fields:
                if key == spec.key or key.startswith(spec.key + "["):
                    spec.errors.append(reason)
                    placed = True
        if not placed and forms:
            target = next((f for f in forms if key.startswith(f.prefix)), forms[0])
            target.errors.append(f"{key}: {reason}" if key else reason)
