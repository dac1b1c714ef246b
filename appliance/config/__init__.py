"""Configuration: the typed schema, the TOML loader and the editor behind `appliance config`."""

from appliance.config.loader import LoadedConfig, load, load_file
from appliance.config.schema import ApplianceConfig

__all__ = ["ApplianceConfig", "LoadedConfig", "load", "load_file"]
