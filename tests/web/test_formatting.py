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


@pytest.mark.parametrize("seconds, text", [
    (None, "never"), (0.4, "just now"), (12.7, "12 s ago"), (120, "2 min ago"),
    (3 * 3600 + 59 * 60, "3 h ago"), (2 * 86400 + 5, "2 d ago"), (-150, "in 2 min"),
])
def test_relative_times_read_as_people_say_them(seconds, text):
    from appliance.web.timefmt import ago

    assert ago(seconds) == text


def test_a_timestamp_is_measured_from_now_and_dated_in_iso_form():
    import time

    from appliance.web.timefmt import ago, iso

    now = 1_790_000_000.0
    assert ago(now - 180, now=now) == "3 min ago" and ago(now + 7200, now=now) == "in 2 h"
    assert ago(time.time() - 3600) == "1 h ago"
    local = time.localtime(now)
    assert iso(now) == time.strftime("%Y-%m-%d %H:%M:%S", local)
    assert iso(now, seconds=False) == time.strftime("%Y-%m-%d %H:%M", local)
    assert iso(None) == ""
