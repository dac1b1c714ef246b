"""[mpps]: the MPPS SCP and the RIS it forwards the procedure steps to (issue 16)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from appliance.config.base import (
    SECONDS,
    Name,
    Section,
    positive_seconds,
)
from appliance.forward.config import DestinationConfig


class MppsConfig(Section):
    """[mpps]: the Modality Performed Procedure Step SCP."""

    enabled: bool = Field(True, title="MPPS service",
                          description="Offer the MPPS SOP class (N-CREATE, N-SET); "
                          "false: its presentation context is refused")
    forward_to: list[Name] = Field(
        default_factory=list, title="Forward to",
        description="Names of [[peers]] (a RIS) each accepted N-CREATE "
        "and N-SET is forwarded to, in order per procedure step (empty: none)")
    retry_initial: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        10.0, title="First retry after", json_schema_extra=SECONDS,
        description="Seconds before the first retry of a forward that failed")
    retry_max: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        600.0, title="Longest retry wait", json_schema_extra=SECONDS,
        description="Longest wait between forward retries, seconds (the wait doubles "
        "up to it)")

    @field_validator("retry_max")
    @classmethod
    def _max_not_below_initial(cls, value: float, info) -> float:
        return DestinationConfig._max_not_below_initial(value, info)
