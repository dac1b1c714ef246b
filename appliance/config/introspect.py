"""Reading the schema: configuration keys as parts (`parse_key`), the one walk from the root
model to the field at a key (`field_at`, used by the editor and the labels), which model a field
holds, and the plain type under `Annotated[...]` / `X | None`. Shared by the loader's
suggestions, the editor's coercion and the labels."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


def strip_annotation(annotation: Any) -> Any:
    """`Annotated[int, ...]` -> int; `Model | None` -> Model."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return strip_annotation(args[0])
    return annotation


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation holds directly, or None."""
    base = strip_annotation(annotation)
    return base if isinstance(base, type) and issubclass(base, BaseModel) else None


def list_item(annotation: Any) -> Any:
    """The item type of a `list[...]` annotation, or None."""
    base = strip_annotation(annotation)
    return get_args(base)[0] if get_origin(base) is list else None


def parse_key(key: str) -> list[str | int]:
    """'dicom.port' -> ['dicom', 'port'];
    'peers[0].host' and 'peers.0.host' -> ['peers', 0, 'host']."""
    parts: list[str | int] = []
    for piece in key.split("."):
        if piece.isdigit():
            parts.append(int(piece))
            continue
        match = _PART.fullmatch(piece)
        if not match:
            raise ValueError(f"{key!r} is not a configuration key (use SECTION.KEY)")
        parts.append(match.group(1))
        if match.group(2) is not None:
            parts.append(int(match.group(2)))
    return parts


def field_at(root: type[BaseModel], parts: list[str | int]) -> tuple[Any, FieldInfo | None]:
    """Walk the schema from `root` along `parts` (names, and list indices as ints, as
    `parse_key` gives them): the annotation found there and the field that declares it (the
    list's field after an index; None for no parts). Raises ValueError naming the first part
    that is not in the schema."""
    annotation: Any = root
    info: FieldInfo | None = None
    walked: list[str | int] = []
    for part in parts:
        if isinstance(part, int):
            inner = list_item(annotation)
            if inner is None:
                raise ValueError(f"{_show(walked)} is not a list")
            annotation = inner
        else:
            model = model_of(annotation)
            if model is None:
                raise ValueError(f"{_show(walked)} has no keys")
            info = model.model_fields.get(part)
            if info is None:
                known = ", ".join(model.model_fields)
                where = _show(walked) or "the top level"
                raise ValueError(f"unknown key {part!r} in {where} (known: {known})")
            annotation = info.annotation
        walked.append(part)
    return annotation, info


def _show(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
