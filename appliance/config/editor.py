"""Change one configuration value in `appliance.toml`, validated, written atomically, with the
comments and order of the rest of the file kept (tomlkit edits the document in place).

This is the one write path for configuration: `appliance config set`, the web page and the
front panel all go through `set_value`.

Schema versions (migrations.py): a file of an older `schema_version` is migrated when a setting
is changed, never just because it was read. Before the migrated file replaces it, an exact copy
of the old one is kept as `appliance.toml.v<old>`, which older firmware reads after a rollback.
On older firmware that is reading such a copy (the file itself is too new for it), a change is
made to the copy's settings and written as the file; the newer file is kept as
`appliance.toml.before-downgrade`.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomli_w
import tomlkit
from pydantic import SecretStr

from appliance.config import loader, migrations
from appliance.config.introspect import field_at, model_of, parse_key, strip_annotation
from appliance.config.loader import parse_text
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

def field_annotation(parts: list[str | int]) -> Any:
    """The schema type at `parts`; raises ValueError naming the first unknown part."""
    return field_at(ApplianceConfig, parts)[0]


def coerce(annotation: Any, raw: str) -> Any:
    """Turn a command-line string into the TOML value the field expects."""
    base = strip_annotation(annotation)
    origin = get_origin(base)
    if base is bool:
        lowered = raw.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if base is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if base is float:
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    if base is str or base is SecretStr or origin is Literal:
        return raw
    if origin is list:
        if raw.lstrip().startswith("["):
            return _toml_value(raw)
        inner = get_args(base)[0]
        if model_of(inner) is not None:
            raise ValueError("expected a TOML array of tables, e.g. [{name = \"PACS\", ...}]")
        return [coerce(inner, item.strip()) for item in raw.split(",") if item.strip()]
    if model_of(base) is not None:
        return _toml_value(raw)
    raise ValueError(f"cannot set a value of type {base!r} from the command line")


def set_value(path: Path, key: str, raw: str) -> ApplianceConfig:
    """Set `key` to the command-line string `raw` in the file at `path` (created if missing)
    and return the new config. Nothing is written unless the whole resulting file validates.
    """
    try:
        _refuse_version_key(key)
        value = coerce(field_annotation(parse_key(key)), raw)
    except ValueError as exc:
        raise ConfigError([f"{path}: {key}: {exc}"]) from None
    return set_values(path, {key: value})


def set_values(path: Path, changes: dict[str, Any]) -> ApplianceConfig:
    """Write several {key: typed value} changes at once, all or nothing: the file is replaced
    atomically only when every key exists and the whole resulting file validates."""
    origin = str(path)
    text, version, copy = _editable_text(path)
    document = tomlkit.parse(text)
    if version < migrations.CURRENT:
        document, _ = migrations.upgrade(document, origin)
    # A file without the key is version 1: once there are later versions, every file written
    # says which it is. While 1 is the only one, the key is left out, so firmware from before
    # schema versions (which refuses unknown keys) can still read the file after a rollback.
    if migrations.CURRENT > migrations.FIRST and \
            document.get(migrations.KEY) != migrations.CURRENT:
        document[migrations.KEY] = migrations.CURRENT
    problems = []
    for key, value in changes.items():
        try:
            _refuse_version_key(key)
            parts = parse_key(key)
            field_annotation(parts)
            _assign(document, parts, value)
        except (ValueError, IndexError) as exc:
            problems.append(f"{origin}: {key}: {exc}")
    if problems:
        raise ConfigError(problems)
    new_text = tomlkit.dumps(document)
    config = parse_text(new_text, origin)
    if copy is not None:
        kept = path.with_name(path.name + ".before-downgrade")
        write_atomically(kept, path.read_bytes())
        log.warning("configuration %s: written by newer firmware, replaced by the settings of "
                    "%s with this change; the newer file is kept as %s", origin, copy, kept)
    elif version < migrations.CURRENT and path.exists():
        _keep_old_version(path, version)
    write_atomically(path, new_text.encode("utf-8"))
    log.info("configuration %s: %s set", origin, ", ".join(changes))
    return config


def _editable_text(path: Path) -> tuple[str, int, Path | None]:
    """(text to edit, its schema_version, the older copy it came from or None).

    Refuses a file that is already broken: the user must see that problem first."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return "", migrations.CURRENT, None
    except UnicodeDecodeError:
        loader.read_text(path)  # raises the usual one-line refusal
        raise
    # Decoded from bytes, not read in text mode, so that CRLF line ends stay as they are.
    file = loader.inspect_file(path)  # validates; refuses a too-new file without a copy
    if file.read_from == path:
        return text, file.version, None
    return file.read_from.read_bytes().decode("utf-8"), file.version, file.read_from


def _keep_old_version(path: Path, version: int) -> None:
    """Keep the exact version-`version` file as `NAME.v<version>` before it is migrated, and
    drop copies of versions between it and ours, which are older than this file's settings."""
    backup = loader.backup_path(path, version)
    data = path.read_bytes()
    if not backup.is_file() or backup.read_bytes() != data:
        write_atomically(backup, data)
        log.info("configuration %s: schema_version %d -> %d; the version-%d file is kept as %s "
                 "for older firmware", path, version, migrations.CURRENT, version, backup)
    for stale in range(version + 1, migrations.CURRENT):
        loader.backup_path(path, stale).unlink(missing_ok=True)


def _refuse_version_key(key: str) -> None:
    if key.split(".")[0].split("[")[0] == migrations.KEY:
        raise ValueError("set by the firmware when it writes the file, not by hand")


def render(config: ApplianceConfig) -> str:
    """The effective configuration as TOML, secrets masked (pydantic dumps SecretStr masked)."""
    return tomli_w.dumps(config.model_dump(mode="json"))


def _assign(document: Any, parts: list[str | int], value: Any) -> None:
    node = document
    for index, part in enumerate(parts[:-1]):
        following = parts[index + 1]
        if isinstance(part, int):
            if part >= len(node):
                raise IndexError(f"there are only {len(node)} entries")
            node = node[part]
        else:
            if part not in node:
                if isinstance(following, int):
                    raise IndexError(f"there are no {part} yet; add them as a whole first")
                node[part] = tomlkit.table()
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if last >= len(node):
            raise IndexError(f"there are only {len(node)} entries")
    node[last] = _to_tomlkit(value)


def _to_tomlkit(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        array = tomlkit.aot()
        for item in value:
            table = tomlkit.table()
            table.update(item)
            array.append(table)
        return array
    return value


def _toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not a TOML value: {exc}") from None
