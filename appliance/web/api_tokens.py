"""API tokens: read-only access to the web server for programs (a DICOMweb viewer, a monitoring
script) without the administrator's password, sent as `Authorization: Bearer TOKEN`.

A token is 32 random bytes (URL-safe text, 43 characters) shown once by `appliance api-token
create NAME`; the database keeps only its SHA-256 (a token is random, so a plain hash is as
good as a slow one and lets each request be checked with one index lookup). Revoking a token
deletes its row, and the next request with it is refused: the running appliance reads the
table at every request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.store import api_token_tables
from appliance.store.database import Database

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_BYTES = 32
#: The last-used time is written at most this often per token (seconds).
TOUCH_INTERVAL = 60.0


class TokenError(ApplianceError, ValueError):
    """A token name that cannot be used (bad form, already taken, unknown)."""


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: float
    last_used_at: float | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiTokens:
    """The tokens of the database under `data_dir` (opened on first use)."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self._db: Database | None = None
        self._lock = threading.Lock()

    def configure(self, data_dir: Path | str) -> None:
        if Path(data_dir) != self.data_dir:
            with self._lock:
                self.data_dir, db, self._db = Path(data_dir), self._db, None
            if db is not None:
                db.close()

    def _database(self) -> Database:
        with self._lock:
            if self._db is None:
                db = Database.in_data_dir(self.data_dir)
                db.migrate(api_token_tables.MIGRATIONS)
                self._db = db
            return self._db

    def create(self, name: str) -> str:
        """A new token named `name` (TokenError if the name is bad or taken): returned once."""
        if not NAME_PATTERN.fullmatch(name):
            raise TokenError(f"token name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            with self._database().transaction() as tx:
                tx.execute("INSERT INTO api_tokens (name, token_sha256, created_at) "
                           "VALUES (?, ?, ?)", (name, digest(token), time.time()))
        except sqlite3.IntegrityError:
            raise TokenError(f"a token named {name!r} exists already (revoke it first)") from None
        log.info("API token %r created", name)
        return token

    def entries(self) -> list[TokenInfo]:
        rows = self._database().connection().execute(
            "SELECT name, created_at, last_used_at FROM api_tokens ORDER BY name")
        return [TokenInfo(r[0], r[1], r[2]) for r in rows]

    def revoke(self, name: str) -> None:
        with self._database().transaction() as tx:
            gone = tx.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount
        if not gone:
            raise TokenError(f"no token named {name!r}")
        log.info("API token %r revoked", name)

    def verify(self, token: str) -> str | None:
        """The name of the token, or None when it is not (or no longer) valid."""
        if not token or len(token) > 256:
            return None
        conn = self._database().connection()
        row = conn.execute("SELECT name, last_used_at FROM api_tokens WHERE token_sha256 = ?",
                           (digest(token),)).fetchone()
        if row is None:
            return None
        now = time.time()
        if row[1] is None or now - row[1] > TOUCH_INTERVAL:
            try:
                conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE name = ?",
                             (now, row[0]))
            except sqlite3.Error as exc:  # a busy database must not refuse a valid token
                log.warning("cannot note the use of API token %r: %s", row[0], exc)
        return row[0]

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()
