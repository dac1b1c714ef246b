"""The API token table of the shared database (appliance/web/api_tokens.py reads and writes it;
`appliance api-token` manages it).

- `api_tokens`: one row per token that may be used: its name (unique), the SHA-256 of the
  token (the token itself is shown once, when created, and never stored), when it was created
  and when it was last used (updated at most once a minute). Revoking deletes the row.
"""

from __future__ import annotations

from appliance.store.database import Migration

OWNER = "api_tokens"
MIGRATIONS = [Migration(OWNER, 1, """
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_used_at REAL
);
""")]
