"""How the web pages write moments in time: relative to now as a person says it ("2 min ago",
"3 h ago") and absolute in ISO form ("2024-05-01 14:03:07", local time). One module, used as
the Jinja filters `ago` and `iso` by every page."""

from __future__ import annotations

import time

#: A number at least this large is a moment (epoch seconds, after 2001), smaller ones a span.
EPOCH_FLOOR = 1e9


def ago(seconds_or_timestamp: float | None, now: float | None = None) -> str:
    """'12 s ago', '2 min ago', '3 h ago', '4 d ago' (the largest whole unit); 'never' for
    None. Takes a span in seconds or an epoch timestamp (told apart by size)."""
    if seconds_or_timestamp is None:
        return "never"
    value = float(seconds_or_timestamp)
    if value >= EPOCH_FLOOR:
        value = (time.time() if now is None else now) - value
    seconds = max(0, int(value))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def iso(timestamp: float | None) -> str:
    """An epoch timestamp as 'YYYY-MM-DD HH:MM:SS' in local time; '-' for None."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(timestamp)))
