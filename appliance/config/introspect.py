"""Reading the schema's type annotations: which model a field holds, and the plain type under
`Annotated[...]` / `X | None`. Shared by the loader's suggestions and the editor's coercion."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


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
