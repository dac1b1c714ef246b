"""Where the update records live: `<data_dir>/update/` (`/data/update` on the box).

The directory is shared between the installer (root) and the web process (user `appliance`):
on the box tmpfiles.d makes it `1775 root:appliance` (the web process may add its request
but cannot replace root's records) with `incoming/` owned by `appliance`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdatePaths:
    root: Path

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> UpdatePaths:
        return cls(Path(data_dir).absolute() / "update")

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def request(self) -> Path:
        return self.root / "request.json"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"
