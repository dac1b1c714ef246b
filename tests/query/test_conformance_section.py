"""The Query/Retrieve section of the Conformance Statement lists exactly the keys the SCP
reads and matches at each level, and its unique keys."""

from __future__ import annotations

from pydicom.datadict import dictionary_description

from appliance.query.models import LEVEL_KEYS, UNIQUE_KEY
from tests.conftest import REPO


def test_the_level_table_lists_the_keys_of_each_level():
    text = (REPO / "docs" / "conformance.md").read_text()
    section = text.split("### 4.9 Query/Retrieve (SCP)", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in LEVEL_KEYS:
            rows[cells[0]] = cells
    assert set(rows) == set(LEVEL_KEYS)
    for level, keys in LEVEL_KEYS.items():
        assert rows[level][1] == dictionary_description(UNIQUE_KEY[level])
        documented = set(rows[level][2].split(", "))
        assert documented == {dictionary_description(k) for k in keys
                              if k != UNIQUE_KEY[level]}, level
