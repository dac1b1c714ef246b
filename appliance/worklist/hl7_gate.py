"""Who may hold an HL7 connection: `[worklist.hl7] allowed_hosts`, `max_connections` and
`max_connections_per_host`. The listener asks `admit()` for every new connection and closes a
refused one at once, so the listener never holds more descriptors than `max_connections`.

Refusals are logged, at most once per host and reason every `LOG_INTERVAL` seconds (a flood of
a thousand connections is a few lines in the journal, with the count of the others).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)

LOG_INTERVAL = 10.0


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address (an IPv4-mapped IPv6 address as IPv4), None when unreadable."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class ConnectionGate:
    """Counts open connections per host and says which new ones may stay."""

    def __init__(self, allowed_hosts: list[str], max_connections: int, max_per_host: int,
                 clock: Callable[[], float] = time.monotonic):
        self.allowed = [ipaddress.ip_network(n) for n in allowed_hosts]
        self.max_connections = max_connections
        self.max_per_host = max_per_host
        self.open: Counter[str] = Counter()
        self.refused = 0
        self._clock = clock
        self._last_log: dict[tuple[str, str], float] = {}
        self._unlogged: Counter[tuple[str, str]] = Counter()

    @property
    def total(self) -> int:
        return sum(self.open.values())

    def admit(self, host: str) -> str | None:
        """Count the connection from `host` and return None, or return why it is refused."""
        reason = self._refusal(host)
        if reason is None:
            self.open[host] += 1
            return None
        self.refused += 1
        self._log(host, reason)
        return reason

    def release(self, host: str) -> None:
        """An admitted connection from `host` has closed."""
        self.open[host] -= 1
        if self.open[host] <= 0:
            del self.open[host]

    def _refusal(self, host: str) -> str | None:
        if self.allowed:
            address = host_address(host)
            if address is None or not any(address in net for net in self.allowed
                                          if net.version == address.version):
                return "host not in [worklist.hl7] allowed_hosts"
        if self.total >= self.max_connections:
            return f"{self.total} connections open (max_connections {self.max_connections})"
        if self.open[host] >= self.max_per_host:
            return (f"{self.open[host]} connections open from this host "
                    f"(max_connections_per_host {self.max_per_host})")
        return None

    def _log(self, host: str, reason: str) -> None:
        key = (host, reason.split(" (", 1)[-1] if "(" in reason else reason)
        now = self._clock()
        last = self._last_log.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            self._unlogged[key] += 1
            return
        more = self._unlogged.pop(key, 0)
        self._last_log[key] = now
        if len(self._last_log) > 1024:  # hosts that stopped trying are forgotten
            self._last_log = {k: t for k, t in self._last_log.items()
                              if now - t < LOG_INTERVAL}
            self._unlogged = Counter({k: n for k, n in self._unlogged.items()
                                      if k in self._last_log})
        log.warning("HL7 connection from %s refused: %s%s", host, reason,
                    f" ({more} more refused in the last {now - last:.0f} s)"
                    if more and last is not None else "")
