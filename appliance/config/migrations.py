"""Configuration schema versions: which version a file is, and the migrations that bring an
older file up to the version this firmware reads.

`appliance.toml` carries a top-level `schema_version` (a whole number; a file without it is
version 1, which is every file written before versions existed). `CURRENT` is the version this
firmware reads and writes. `MIGRATIONS[n]` turns a version-n document into a version-n+1 one.

A migration works on the plain TOML document, before validation, and changes it in place with
ordinary dict operations (get, pop, item assignment) and returns it: the editor runs the same
functions on its tomlkit document, so the comments and layout of everything a migration does
not touch survive. Its docstring's first line says what changed; it is logged and shown by
`appliance config check`. Migrations never refuse: a value they cannot move is left for the
schema to refuse with the usual file/key/reason line.

Version history: 1 is the only version so far. No key has been renamed, moved or deprecated
since the first release, so there is no migration to ship yet and the registry is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from appliance.core.errors import ConfigError

log = logging.getLogger(__name__)

KEY = "schema_version"
FIRST = 1
CURRENT = 1

Document = MutableMapping[str, Any]
Migration = Callable[[Document], Document]

# version n -> the function turning a version-n document into a version-n+1 document.
MIGRATIONS: dict[int, Migration] = {}


def migration(version: int) -> Callable[[Migration], Migration]:
    """Register the decorated function as the migration from `version` to `version + 1`."""
    def register(func: Migration) -> Migration:
        if version in MIGRATIONS:
            raise ValueError(f"a migration from schema_version {version} is already registered")
        MIGRATIONS[version] = func
        return func
    return register


def file_version(document: Document, origin: str) -> int:
    """The document's schema_version (FIRST when absent); ConfigError if it is not one."""
    if KEY not in document:
        return FIRST
    value = document[KEY]
    if isinstance(value, bool) or not isinstance(value, int) or value < FIRST:
        raise ConfigError([f"{origin}: {KEY}: must be a whole number of {FIRST} or more, "
                           f"got {_show(value)} (leave it out for a file written before "
                           "versions existed)"])
    return int(value)


def newer_than_current(version: int, origin: str, hint: str = "") -> ConfigError:
    """The refusal of a file this firmware is too old to read."""
    return ConfigError([f"{origin}: {KEY}: written by newer firmware: {KEY} {version}, "
                        f"this firmware reads up to {CURRENT}{hint}"])


def summary(version: int) -> str:
    """'schema_version 1 -> 2: what changed' for the migration from `version`."""
    doc = (MIGRATIONS[version].__doc__ or "").strip().splitlines()
    return f"{KEY} {version} -> {version + 1}: {doc[0].strip() if doc else 'no description'}"


def pending(version: int) -> list[str]:
    """Summaries of the migrations a version-`version` file goes through, in order."""
    return [summary(step) for step in range(version, CURRENT)]


def upgrade(document: Document, origin: str) -> tuple[Document, list[str]]:
    """Bring `document` to CURRENT in place; return it and the summaries of the steps run.

    Its `schema_version` key is left as it was: the loader drops it before validation, the
    editor sets it when it writes. Raises ConfigError for a bad or too-new version."""
    version = file_version(document, origin)
    if version > CURRENT:
        raise newer_than_current(version, origin)
    steps = []
    for step in range(version, CURRENT):
        if step not in MIGRATIONS:
            # A gap in the registry is a firmware bug, not a problem with the file.
            raise RuntimeError(f"no configuration migration from {KEY} {step}")
        try:
            document = MIGRATIONS[step](document)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A table where a value was expected or the like: say so in one line.
            raise ConfigError([f"{origin}: {KEY}: cannot migrate it ({summary(step)}): "
                               f"{type(exc).__name__}: {exc}; the file does not have the "
                               f"layout of version {step}: correct it by hand or restore a "
                               "configuration backup"]) from None
        steps.append(summary(step))
        log.info("%s: migrated %s", origin, steps[-1])
    return document, steps


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)
