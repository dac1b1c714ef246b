"""Backup and restore of the configuration file: the backup is the file as it is (comments
kept); a restore is validated by the schema before it replaces the file, and the replaced file
is kept beside it as `appliance.toml.before-restore`."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config import editor
from appliance.config.loader import parse_text
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1024 * 1024


def read_backup(path: Path, running: ApplianceConfig) -> str:
    """The configuration file's text; the effective configuration when there is no file yet."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "# built-in defaults (no configuration file yet)\n" + editor.render(running)


def restore_config(path: Path, data: bytes) -> ApplianceConfig:
    """Replace the configuration file with `data` if it validates; raise ConfigError if not."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"uploaded file: larger than {MAX_CONFIG_BYTES // 1024} KiB"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"uploaded file: not UTF-8 text ({exc.reason} at byte {exc.start})"]) \
            from None
    config = parse_text(text, "uploaded file")
    if path.exists():
        backup = path.with_name(path.name + ".before-restore")
        write_atomically(backup, path.read_bytes())
    write_atomically(path, text.encode("utf-8"))
    log.warning("configuration %s replaced by a restore from the web page", path)
    return config
