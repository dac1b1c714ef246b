"""Times as a technician reads them on the web page: how long ago ("2 min ago", "3 h ago")
and dates in ISO 8601 form ("2026-12-05 14:03:07", local time of the box).

Registered as the Jinja filters `ago` and `iso` (appliance/web/app.py), so every page writes
times the same way.
"""

from __future__ import annotations

import time
from datetime import datetime

#: Values above this are Unix timestamps; below it, spans in seconds (1e9 s is 31 years).
_TIMESTAMP_FROM = 1e9

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def ago(seconds_or_timestamp: float | None, now: float | None = None) -> str:
    """'12 s ago', '2 min ago', '3 h ago', '5 d ago' (the largest whole unit), 'just now'
    under a second, 'in 2 min' for a time ahead, 'never' for None. Takes a span in seconds,
    or a Unix timestamp (then measured from `now`, default the current time)."""
    if seconds_or_timestamp is None:
        return "never"
    value = float(seconds_or_timestamp)
    if value >= _TIMESTAMP_FROM:
        value = (time.time() if now is None else now) - value
    span = abs(value)
    if span < 1:
        return "just now"
    for size, unit in _UNITS:
        if span >= size:
            text = f"{int(span // size)} {unit}"
            break
    return f"{text} ago" if value > 0 else f"in {text}"


def iso(timestamp: float | None, seconds: bool = True) -> str:
    """A Unix timestamp as an ISO 8601 date and time in the box's local time,
    '2026-12-05 14:03:07' ('2026-12-05 14:03' with seconds=False); '' for None."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(float(timestamp)).isoformat(
        sep=" ", timespec="seconds" if seconds else "minutes")
