"""[log]: the level the logging setup (`logging_setup.py`) writes from."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from appliance.config.base import Section


class LogConfig(Section):
    """[log]: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", title="Log level", description="Lowest level written to the log"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
