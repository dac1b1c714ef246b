"""[storage]: the Storage SCP (C-STORE) and the local copies the store keeps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from appliance.config.base import (
    DAYS,
    MB,
    PERCENT,
    AETitle,
    Section,
    check_non_negative,
    check_percent,
)


class StorageConfig(Section):
    """[storage]: the Storage SCP (C-STORE) and the local copies it keeps."""

    reserve_mb: Annotated[int, AfterValidator(check_non_negative("reserve"))] = Field(
        500, title="Reserved free space", json_schema_extra=MB,
        description="Free space (MB) kept in the data directory; below it C-STORE is "
        "refused with 0xA700 (Out of Resources)")
    duplicates: Literal["keep_first", "replace"] = Field(
        "keep_first", title="Duplicate images",
        description="A SOP Instance UID received again: keep the stored copy "
        "(keep_first) or replace it and forward it again (replace)")
    retention_days: Annotated[float, AfterValidator(check_non_negative("retention"))] = Field(
        7.0, title="Keep local copies for", json_schema_extra=DAYS,
        description="Local copies are deleted once every destination has them and they are "
        "older than this many days")
    high_water_percent: Annotated[int, AfterValidator(check_percent)] = Field(
        90, title="Clean-up threshold", json_schema_extra=PERCENT,
        description="When the data directory is fuller than this, forwarded copies are "
        "deleted early, oldest first (never an unforwarded one)")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, title="Allowed calling AE titles",
        description="When not empty, only these calling AE titles may store images (others "
        "get 0x0124 Refused: Not Authorized); empty = any caller [dicom] accepts")
