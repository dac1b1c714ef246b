"""Find, read and validate `appliance.toml`, turning every problem into one clear line.

Where the configuration comes from, in order: an explicit `--config FILE`; the
`APPLIANCE_CONFIG` environment variable; `/data/config/appliance.toml` (the box); the
development data directory's `var/config/appliance.toml`; otherwise the built-in development
defaults. Every refusal names the file, the key and the reason.

A file of an older `schema_version` is migrated in memory (migrations.py) and never rewritten
just because it was read, so older firmware can still read it after a rollback. A file of a
newer version (written by newer firmware) is refused, unless the editor of that firmware kept
the older copy beside it (`appliance.toml.v<N>`, N at most our version): then that copy is used,
with a warning, which is what lets a box roll back to older firmware and keep working.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from appliance.config import migrations
from appliance.config.introspect import list_item, model_of
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError, ValueProblems

log = logging.getLogger(__name__)

ENV_VAR = "APPLIANCE_CONFIG"
BOX_CONFIG = Path("/data/config/appliance.toml")
DEV_CONFIG = Path("var/config/appliance.toml")


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file as read: the validated configuration and how it was obtained."""

    config: ApplianceConfig
    path: Path
    read_from: Path  # `path`, or its older copy when `path` was written by newer firmware
    version: int  # schema_version of `read_from`
    steps: tuple[str, ...] = ()  # "schema_version 1 -> 2: ..." migrations run in memory
    newer_version: int | None = None  # schema_version of `path` when it was too new

    def notes(self) -> list[str]:
        """What a technician should know about this file beyond "it is valid"."""
        lines = []
        if self.newer_version is not None:
            lines.append(f"written by newer firmware (schema_version {self.newer_version}, "
                         f"this firmware reads up to {migrations.CURRENT}): using "
                         f"{self.read_from}, the copy kept before that firmware changed it; "
                         "settings changed under the newer firmware are not in effect")
        lines += [f"{step} (done in memory; the file is rewritten when a setting is changed)"
                  for step in self.steps]
        return lines


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and the file it came from (None: built-in defaults)."""

    config: ApplianceConfig
    path: Path | None
    file: ConfigFile | None = None

    def notes(self) -> list[str]:
        return self.file.notes() if self.file else []

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "built-in defaults"


def locate(explicit: str | os.PathLike[str] | None, env: dict[str, str] | None = None
           ) -> tuple[Path | None, bool]:
    """Return (path, explicit): the config file to use, and whether it was named by the user.

    A file named explicitly (option or environment) must exist; the well-known places are
    used only when they exist.
    """
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit), True
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]), True
    for candidate in (BOX_CONFIG, DEV_CONFIG):
        if candidate.is_file():
            return candidate, False
    return None, False


def load(explicit: str | os.PathLike[str] | None = None,
         env: dict[str, str] | None = None) -> LoadedConfig:
    """Locate and load the configuration; raise ConfigError with one line per problem."""
    path, _ = locate(explicit, env)
    if path is None:
        return LoadedConfig(ApplianceConfig(), None)
    file = inspect_file(path)
    return LoadedConfig(file.config, path, file)


def load_file(path: Path) -> ApplianceConfig:
    """Read and validate one TOML file (an older copy if it is too new; see the docstring)."""
    return inspect_file(path).config


def inspect_file(path: Path) -> ConfigFile:
    """Read, migrate and validate one file, saying which file was used and what was done."""
    origin = str(path)
    data = _parse(read_text(path), origin)
    version = migrations.file_version(data, origin)
    if version <= migrations.CURRENT:
        config, steps = _upgrade_and_validate(data, origin)
        return ConfigFile(config, path, path, version, steps)
    copy = older_copy(path)
    if copy is None:
        raise migrations.newer_than_current(
            version, origin, f"; no {path.name}.v{migrations.CURRENT} copy for this firmware "
            "is beside it: install the newer firmware again, or restore a configuration "
            "backup written for this one")
    log.warning("%s was written by newer firmware (schema_version %d, this firmware reads up "
                "to %d): USING THE OLDER COPY %s; settings changed under the newer firmware "
                "are not in effect", path, version, migrations.CURRENT, copy)
    copy_origin = str(copy)
    copy_data = _parse(read_text(copy), copy_origin)
    copy_version = migrations.file_version(copy_data, copy_origin)
    config, steps = _upgrade_and_validate(copy_data, copy_origin)
    return ConfigFile(config, path, copy, copy_version, steps, newer_version=version)


def older_copy(path: Path) -> Path | None:
    """The copy the editor kept of `path` before newer firmware migrated it, that this
    firmware can read: `NAME.v<N>` with the highest N up to our schema version."""
    for version in range(migrations.CURRENT, migrations.FIRST - 1, -1):
        candidate = backup_path(path, version)
        if candidate.is_file():
            return candidate
    return None


def backup_path(path: Path, version: int) -> Path:
    """`appliance.toml` -> `appliance.toml.v1`: where the editor keeps a version-N copy."""
    return path.with_name(f"{path.name}.v{version}")


def read_text(path: Path) -> str:
    """The file's text; ConfigError naming the file if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a configuration file"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) \
            from None
    return text


def parse_text(text: str, origin: str) -> ApplianceConfig:
    """Validate TOML text of this or an older schema version; `origin` names it in errors."""
    return _upgrade_and_validate(_parse(text, origin), origin)[0]


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{origin}: TOML syntax error: {exc}"]) from None


def _upgrade_and_validate(data: dict[str, Any], origin: str
                          ) -> tuple[ApplianceConfig, tuple[str, ...]]:
    data, steps = migrations.upgrade(data, origin)
    data.pop(migrations.KEY, None)
    return validate(data, origin), tuple(steps)


def validate(data: dict[str, Any], origin: str) -> ApplianceConfig:
    """Validate already-parsed data against the schema."""
    try:
        return ApplianceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, origin)) from None


def describe_errors(exc: ValidationError, origin: str) -> list[str]:
    """One line per problem: 'FILE: KEY: REASON' (a value with several problems, such as an
    AE title both too long and holding a backslash, gives a line for each)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        key = dotted_key(loc) or "(top level)"
        lines += [f"{origin}: {key}: {why}" for why in reasons(err, loc)]
    return lines


def reasons(err: dict[str, Any], loc: tuple[Any, ...]) -> list[str]:
    """Every reason one pydantic error holds (several for a `ValueProblems`)."""
    error = err.get("ctx", {}).get("error") if err["type"] == "value_error" else None
    if isinstance(error, ValueProblems):
        return list(error.problems)
    return [reason(err, loc)]


def dotted_key(loc: tuple[Any, ...]) -> str:
    """('peers', 0, 'port') -> 'peers[0].port'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_TOML_TYPE = {
    str: "a string", int: "an integer", float: "a number", bool: "a boolean (true/false)",
    list: "an array", dict: "a table",
}


def _toml_type(value: Any) -> str:
    for pytype, name in _TOML_TYPE.items():
        if type(value) is pytype:
            return name
    return type(value).__name__


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "model_type": "a table",
    "dict_type": "a table",
}


def reason(err: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + _suggestion(loc)
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_toml_type(value)} {value!r}"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {value!r}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind in ("int_from_float", "int_parsing"):
        return f"expected a whole number, got {value!r}"
    return err["msg"]


def _suggestion(loc: tuple[Any, ...]) -> str:
    """' (did you mean 'x'?)' for a mistyped key, found by walking the schema along loc."""
    model: type[BaseModel] | None = ApplianceConfig
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ""
        model = model_of(list_item(field.annotation) or field.annotation)
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
