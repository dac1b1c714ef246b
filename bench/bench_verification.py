"""C-ECHO throughput of the appliance against DCMTK's storescp, the same echoscu client, one run.

Two loads: many short associations (one C-ECHO each: association setup cost) and one
association carrying many C-ECHOs (DIMSE round-trip cost). Reported: operations per second,
receiver CPU seconds, receiver peak RSS, and the ratio appliance / DCMTK.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import cpu_seconds, machine, peak_rss_mb
from tests.conftest import DCMTK_ENV, ApplianceProcess, free_port, wait_listening, write_config

ASSOCIATIONS = 300
ECHOES_IN_ONE = 2000


def run_load(port: int, called: str, associations: int, repeat: int) -> float:
    """Seconds for `associations` echoscu runs, each sending `repeat` C-ECHOs."""
    started = time.perf_counter()
    if associations == 1:
        cmd = ["echoscu", "-aec", called, "--repeat", str(repeat), "127.0.0.1", str(port)]
        subprocess.run(cmd, env=DCMTK_ENV, check=True, capture_output=True)
        return time.perf_counter() - started
    # Many associations from one client process: echoscu's --repeat with association reuse off
    # is not available, so run a shell loop of echoscu processes and subtract process start-up
    # measured against nothing listening? No: both receivers get the same loop, so the ratio is
    # fair even though absolute figures include echoscu's start-up.
    script = f'for i in $(seq {associations}); do echoscu -aec {called} 127.0.0.1 {port} ' \
             '|| exit 1; done'
    subprocess.run(["bash", "-c", script], env=DCMTK_ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(port: int, pid: int, called: str) -> dict:
    cpu0 = cpu_seconds(pid)
    short = run_load(port, called, ASSOCIATIONS, 1)
    long = run_load(port, called, 1, ECHOES_IN_ONE)
    return {
        "assoc_per_s": ASSOCIATIONS / short,
        "echo_per_s": ECHOES_IN_ONE / long,
        "cpu_s": cpu_seconds(pid) - cpu0,
        "rss_mb": peak_rss_mb(pid),
    }


def bench_appliance(tmp: Path) -> dict:
    port = free_port()
    config = write_config(tmp / "appliance.toml", {
        "device": {"data_dir": str(tmp / "data")},
        "dicom": {"port": port, "bind": "127.0.0.1", "max_associations": 20},
        "log": {"level": "WARNING"}})
    proc = ApplianceProcess(config, tmp / "appliance.log")
    try:
        proc.wait_ready()
        return measure(port, proc.pid, "EDGEBOX")
    except subprocess.CalledProcessError:
        print(proc.log()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.stop()


def bench_dcmtk(tmp: Path) -> dict:
    port = free_port()
    out = tmp / "storescp"
    out.mkdir()
    proc = subprocess.Popen(["storescp", "-od", str(out), str(port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        return measure(port, proc.pid, "ANY-SCP")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_appliance(Path(tmp))
        theirs = bench_dcmtk(Path(tmp))
    rows = [
        ("associations/s (1 C-ECHO each, echoscu per association)", "assoc_per_s", "{:.1f}"),
        (f"C-ECHO/s (one association, {ECHOES_IN_ONE} echoes)", "echo_per_s", "{:.0f}"),
        ("receiver CPU seconds (both loads)", "cpu_s", "{:.2f}"),
        ("receiver peak RSS (MB)", "rss_mb", "{:.1f}"),
    ]
    lines = [
        "## Verification (C-ECHO)",
        "",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}. Client: DCMTK echoscu, "
        "TCP_NODELAY=1 on both sides. Reference: DCMTK storescp.",
        "",
        "| measure | appliance | DCMTK storescp | ratio (appliance / DCMTK) |",
        "|---|---|---|---|",
    ]
    for label, key, fmt in rows:
        ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
        lines.append(f"| {label} | {fmt.format(ours[key])} | {fmt.format(theirs[key])} "
                     f"| {ratio:.2f} |")
    lines.append("")
    lines.append("For throughput a ratio above 1 means faster than DCMTK; for CPU and memory a "
                 "ratio above 1 means the appliance uses more.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
    sys.exit(0)
