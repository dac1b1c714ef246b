"""[query_retrieve]: the Query/Retrieve SCP over the local store (PS3.4 Annex C)."""

from __future__ import annotations

from pydantic import Field

from appliance.config.base import Section


class QueryRetrieveConfig(Section):
    """[query_retrieve]: the Query/Retrieve SCP over the local store (PS3.4 Annex C)."""

    enabled: bool = Field(True, title="Query/Retrieve service",
                          description="Offer Patient Root and Study Root C-FIND, C-MOVE "
                          "and C-GET over the instances held locally; false: their "
                          "presentation contexts are refused")
