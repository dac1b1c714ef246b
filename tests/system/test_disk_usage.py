"""The data partition's use as `df` reports it: the blocks reserved for root are neither used
nor usable by the service (it runs as its own user), so an empty disk is 0 % and one the
service cannot write to any more is 100 %; retention and the high-water mark read this."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from appliance.system.disk_usage import used_percent, used_percent_of


def statvfs(blocks: int, free: int, available: int) -> os.statvfs_result:
    # (bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax)
    return os.statvfs_result((4096, 4096, blocks, free, available, 100, 50, 50, 0, 255))


def test_blocks_reserved_for_root_are_not_counted_as_used():
    # 1000 blocks, 50 of them reserved for root, nothing stored
    assert used_percent_of(statvfs(1000, 1000, 950)) == 0.0
    # 475 blocks stored: half of what the service can use
    assert used_percent_of(statvfs(1000, 525, 475)) == 50.0
    # the service can write no more (only root's reserve is left)
    assert used_percent_of(statvfs(1000, 50, 0)) == 100.0


def test_without_a_reserve_and_on_an_empty_file_system():
    assert used_percent_of(statvfs(1000, 250, 250)) == 75.0
    assert used_percent_of(statvfs(0, 0, 0)) == 0.0


@pytest.mark.skipif(shutil.which("df") is None, reason="df not installed")
def test_agrees_with_df(tmp_path):
    out = subprocess.run(["df", "--output=pcent", str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout.split()[-1]
    ours = used_percent(tmp_path)
    # df rounds up to a whole percent; the disk may change a little between the two reads
    assert abs(int(out.rstrip("%")) - ours) <= 1.5, (out, ours)
