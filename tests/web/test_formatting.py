"""How the web page writes spans of time and UIDs: as a technician reads them (never
'0 h 0 min', no 64-character job UIDs)."""

from __future__ import annotations

import pytest

from appliance.web.system_info import format_duration, short_uid


@pytest.mark.parametrize("seconds, text", [
    (None, "unknown"), (0, "0 s"), (12.7, "12 s"), (-3, "0 s"), (60, "1 min"),
    (59 * 60 + 59, "59 min"), (3600, "1 h"), (2 * 3600 + 3 * 60, "2 h 3 min"),
    (86400, "1 d"), (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
])
def test_durations_read_as_people_say_them(seconds, text):
    assert format_duration(seconds) == text


def test_long_uids_show_their_end():
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901234"
    assert short_uid(uid) == "…345678901234" and short_uid("7") == "7"
    assert short_uid("1.2.840.10008.1") == "1.2.840.10008.1"  # short enough: whole
