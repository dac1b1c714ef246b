"""The worklist section of the Conformance Statement lists exactly the keys the SCP matches on."""

from __future__ import annotations

import re

from pydicom.datadict import tag_for_keyword

from appliance.worklist.keys import MATCHING_SPS, MATCHING_TOP
from tests.conftest import REPO


def test_documented_matching_keys_are_the_matched_keys():
    text = (REPO / "docs" / "conformance.md").read_text()
    section = text.split("### 4.5 Modality Worklist (SCP)", 1)[1].split("\n### ", 1)[0]
    documented = {}
    for line in section.splitlines():
        match = re.match(r"\| [^|]+ \| \((\w{4}),(\w{4})\) \| (\w\w) \| (SPS item|item) \|", line)
        if match:
            documented[int(match.group(1) + match.group(2), 16)] = (match.group(3),
                                                                    match.group(4))
    expected = {tag_for_keyword(k): (vr, "item") for k, vr in MATCHING_TOP.items()}
    expected.update({tag_for_keyword(k): (vr, "SPS item") for k, vr in MATCHING_SPS.items()})
    assert documented == expected
