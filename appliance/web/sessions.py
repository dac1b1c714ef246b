"""Login sessions, CSRF tokens and the login rate limit, kept in memory.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the server keeps what it
means, so logging out, a password change or a factory reset ends it at once. Every session,
also the anonymous one a visitor gets before logging in, has its own CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

COOKIE_NAME = "appliance_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 1000


@dataclass
class Session:
    token: str
    csrf: str
    authenticated: bool
    last_seen: float
    flash: list[str] = field(default_factory=list)

    def csrf_matches(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode(), self.csrf.encode())


class SessionStore:
    """Sessions by token, ended after `idle_seconds` without a request."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def new(self, authenticated: bool = False) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), authenticated,
                          self.clock())
        with self._lock:
            self._expire()
            if len(self._sessions) >= MAX_SESSIONS:
                # Anonymous sessions are cheap to make: drop the oldest anonymous ones first.
                oldest = sorted(self._sessions.values(),
                                key=lambda s: (s.authenticated, s.last_seen))
                for stale in oldest[:len(self._sessions) - MAX_SESSIONS + 1]:
                    del self._sessions[stale.token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = self.clock()
            if now - session.last_seen > self.idle_seconds:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def is_logged_in(self, token: str | None) -> bool:
        session = self.get(token)
        return session is not None and session.authenticated

    def end(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def end_all(self, keep: str | None = None) -> None:
        """End every session but `keep` (after a password change or a factory reset)."""
        with self._lock:
            self._sessions = {t: s for t, s in self._sessions.items() if t == keep}

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items()
                      if now - s.last_seen > self.idle_seconds]:
            del self._sessions[token]


class LoginLimiter:
    """Password and setup-code attempts, counted atomically per client address and overall.

    `begin(client)` reserves an attempt under the lock before the (slow) password check and
    `finish(client, ok)` settles it, so attempts that run at the same time count against the
    limit while they run: however many arrive at once, at most `max_failures` are checked
    before the address must wait. After `max_failures` failures within `window` seconds the
    address waits `lockout` seconds (doubling on each new lockout, up to an hour). Overall, at
    most `max_in_flight` checks run at once (each takes ~16 MiB of scrypt memory) and after
    `max_global_failures` failures from all addresses within `window` every attempt waits
    `lockout` seconds.
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0, lockout: float = 60.0,
                 max_in_flight: int = 4, max_global_failures: int = 100,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_in_flight = max_in_flight
        self.max_global_failures = max_global_failures
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lockouts: dict[str, int] = {}
        self._global_failures: list[float] = []
        self._global_locked_until = 0.0

    def begin(self, client: str) -> float:
        """Reserve an attempt for `client`: 0 when it may check now (then call `finish`),
        else the seconds it must wait first."""
        with self._lock:
            now = self.clock()
            wait = max(self._locked_until.get(client, 0.0) - now,
                       self._global_locked_until - now)
            if wait > 0:
                return wait
            in_flight = self._in_flight.get(client, 0)
            recent = [t for t in self._failures.get(client, []) if now - t < self.window]
            self._failures[client] = recent
            if len(recent) + in_flight >= self.max_failures \
                    or sum(self._in_flight.values()) >= self.max_in_flight:
                return 1.0  # the attempts still running decide; try again in a moment
            self._in_flight[client] = in_flight + 1
            return 0.0

    def finish(self, client: str, ok: bool) -> None:
        """Settle an attempt reserved by `begin`."""
        with self._lock:
            left = self._in_flight.get(client, 1) - 1
            if left > 0:
                self._in_flight[client] = left
            else:
                self._in_flight.pop(client, None)
        if ok:
            self.succeeded(client)
        else:
            self.failed(client)

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.window]
            recent.append(now)
            self._failures[client] = recent
            if len(recent) >= self.max_failures:
                count = self._lockouts.get(client, 0) + 1
                self._lockouts[client] = count
                seconds = min(self.lockout * 2 ** (count - 1), 3600.0)
                self._locked_until[client] = now + seconds
                self._failures[client] = []
                log.warning("login: %d failed attempts from %s; refusing logins from it for "
                            "%.0f s", len(recent), client, seconds)
            self._global_failures = [t for t in self._global_failures
                                     if now - t < self.window] + [now]
            if len(self._global_failures) >= self.max_global_failures:
                self._global_locked_until = now + self.lockout
                self._global_failures = []
                log.warning("login: %d failed attempts from all addresses within %.0f s; "
                            "refusing every login for %.0f s", self.max_global_failures,
                            self.window, self.lockout)
            self._forget_stale(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
            self._lockouts.pop(client, None)
            self._locked_until.pop(client, None)

    def _forget_stale(self, now: float) -> None:
        """Bound the tables: addresses whose failures and lockout are over are dropped."""
        if len(self._failures) < 10_000:
            return
        for client in [c for c, times in self._failures.items()
                       if not times or now - times[-1] >= self.window]:
            if self._locked_until.get(client, 0.0) <= now and client not in self._in_flight:
                self._failures.pop(client, None)
                self._locked_until.pop(client, None)
                self._lockouts.pop(client, None)
