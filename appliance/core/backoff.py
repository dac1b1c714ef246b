"""The one backoff formula of the appliance: a wait of `initial` after the first failure,
multiplied by `factor` (2) after each further one, never more than `maximum`. The supervisor
restarts components with it, the image and MPPS forwarders retry a peer with it, the Storage
Commitment reporter resends a report with it."""

from __future__ import annotations


def backoff_delay(failures: int, initial: float, maximum: float, factor: float = 2.0) -> float:
    """initial, 2x, 4x ... capped at maximum (`failures` counts from 1; 0 is taken as 1)."""
    return min(initial * factor ** max(failures - 1, 0), maximum)
