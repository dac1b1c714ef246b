"""[mpps], [storage_commitment] and [query_retrieve]: the DICOM services a modality expects
beside storage and the worklist (issue 16).

Kept beside `schema.py` (which imports it, as it does `print_schema`) so that file stays
readable; the checks that need other sections (peer names) stay on `ApplianceConfig`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from appliance.config.schema import (
    HOURS,
    SECONDS,
    DestinationConfig,
    Name,
    Section,
    check_between,
    positive_seconds,
)


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


class QueryRetrieveConfig(Section):
    """[query_retrieve]: the Query/Retrieve SCP over the local store (PS3.4 Annex C)."""

    enabled: bool = Field(True, title="Query/Retrieve service",
                          description="Offer Patient Root and Study Root C-FIND, C-MOVE "
                          "and C-GET over the instances held locally; false: their "
                          "presentation contexts are refused")
