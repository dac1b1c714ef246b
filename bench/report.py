"""Writing results: Markdown sections in docs/benchmarks.md, and process CPU/memory readings."""

from __future__ import annotations

import os
import platform
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Written by `make bench` (`python -m bench`); each section is replaced when its benchmark runs.
Every figure is measured against the reference peer on the same machine in the same run, and
the ratio is what matters: absolute numbers depend on the machine.
"""


def write_section(name: str, body: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment (BENCH_ROUNDS, BENCH_CT_IMAGES), else `default`."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def rounds(default: int = 3) -> int:
    """Rounds per case: BENCH_ROUNDS, else `default`."""
    return max(1, env_int("BENCH_ROUNDS", default))


def median_range(values: Sequence[float], digits: int = 1) -> str:
    """'median (min–max)' of one measure over the rounds."""
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def paired_ratio(ours: Sequence[float], theirs: Sequence[float], digits: int = 2) -> str:
    """The ratio of the medians, and in brackets the range of the per-round ratios (round i
    pairs ours[i] with theirs[i], measured one after the other)."""
    per_round = [a / b for a, b in zip(ours, theirs, strict=True) if b]
    if not per_round:
        return "–"
    ratio = statistics.median(ours) / statistics.median(theirs)
    return (f"{ratio:.{digits}f} "
            f"({min(per_round):.{digits}f}–{max(per_round):.{digits}f})")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory now (VmRSS) of a running process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
