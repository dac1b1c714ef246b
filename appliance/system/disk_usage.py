"""How full a file system is, the way `df` reports it: the blocks in use over the blocks the
appliance can use (in use plus available to an unprivileged writer). The blocks reserved for
root count neither as used nor as usable, since the service runs as its own user: an empty
disk is 0 % used and a disk the service can no longer write to is 100 %."""

from __future__ import annotations

import os


def used_percent_of(fs: os.statvfs_result) -> float:
    """Percent in use of what an unprivileged writer can use (df's Use%), from statvfs."""
    used = fs.f_blocks - fs.f_bfree
    usable = used + fs.f_bavail
    return 100.0 * used / usable if usable > 0 else 0.0


def used_percent(path: str | os.PathLike) -> float:
    """`used_percent_of` for the file system holding `path`."""
    return used_percent_of(os.statvfs(path))
