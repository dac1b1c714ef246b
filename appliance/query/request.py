"""A C-FIND, C-MOVE or C-GET identifier checked against its information model (PS3.4 C.4.1.2.1,
C.4.2.2.1, C.4.3.2.1): Query/Retrieve Level one of the model's levels, and for a hierarchical
query the unique key of every level above it given as a single value. What cannot be used is
an `IdentifierError` (status 0xA900, Identifier does not match SOP Class), with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.dicom.matching import QueryError, json_values
from appliance.query.models import LEVELS, UNIQUE_COLUMN, UNIQUE_KEY, model_of

LEVEL_TAG = "00080052"
UNIQUE_TAG = {"PatientID": "00100020", "StudyInstanceUID": "0020000D",
              "SeriesInstanceUID": "0020000E", "SOPInstanceUID": "00080018"}


class IdentifierError(QueryError):
    """The identifier does not fit the SOP class's model: status 0xA900."""


@dataclass(frozen=True)
class QueryRequest:
    """The checked identifier (DICOM JSON), its model ('patient' or 'study'), its level and
    the unique keys given for the levels above it, as index column -> values."""

    identifier: dict[str, Any]
    model: str
    level: str
    above: dict[str, list[str]]

    def level_values(self) -> list[str]:
        """The values of the level's own unique key (a UID list, a single value or none)."""
        return [v.strip() for v in
                json_values(self.identifier.get(UNIQUE_TAG[UNIQUE_KEY[self.level]]))]


def parse(sop_class: str, identifier: dict[str, Any]) -> QueryRequest:
    """The request for one of our SOP classes, or IdentifierError."""
    model = model_of(sop_class)
    levels = LEVELS[model]
    given = [v.strip().upper() for v in json_values(identifier.get(LEVEL_TAG))]
    if len(given) != 1:
        raise IdentifierError("Query/Retrieve Level (0008,0052) missing")
    level = given[0]
    if level not in levels:
        raise IdentifierError(f"level {level} is not one of the "
                              f"{'Patient' if model == 'patient' else 'Study'} Root model's "
                              f"({', '.join(levels)})")
    above: dict[str, list[str]] = {}
    for upper in levels[:levels.index(level)]:
        keyword = UNIQUE_KEY[upper]
        values = [v.strip() for v in json_values(identifier.get(UNIQUE_TAG[keyword]))]
        if len(values) != 1 or "*" in values[0] or "?" in values[0]:
            raise IdentifierError(f"{keyword} must be one value for a {level} level "
                                  "query (hierarchical query)")
        above[UNIQUE_COLUMN[upper]] = values
    return QueryRequest(identifier, model, level, above)
