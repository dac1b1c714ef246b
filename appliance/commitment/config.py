"""[storage_commitment]: the Storage Commitment Push Model SCP (PS3.4 Annex J)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from appliance.config.base import HOURS, Section, check_between


class StorageCommitmentConfig(Section):
    """[storage_commitment]: the Storage Commitment Push Model SCP (PS3.4 Annex J)."""

    enabled: bool = Field(True, title="Storage Commitment service",
                          description="Offer Storage Commitment Push Model (N-ACTION, "
                          "answered by N-EVENT-REPORT); false: its presentation context is "
                          "refused")
    commit_when: Literal["stored", "forwarded"] = Field(
        "stored", title="Committed when",
        description="When an instance counts as committed: \"stored\" once it is "
        "in the durable store and intact; \"forwarded\" also once every destination its "
        "routes send it to has acknowledged it")
    timeout_hours: Annotated[float, AfterValidator(check_between(0.01, 8760))] = \
        Field(24.0, title="Answer pending requests after", json_schema_extra=HOURS,
              description="Hours a commitment request may stay pending before it is "
              "answered with failures for what is still not committed")
