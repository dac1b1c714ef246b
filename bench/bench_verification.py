"""C-ECHO: the appliance against DCMTK's storescp, the same echoscu client, alternating rounds.

Two loads: many short associations (one C-ECHO each, one echoscu process per association:
association set-up cost) and one association carrying many C-ECHOs (DIMSE round-trip cost).
Both receivers run for the whole benchmark; each round runs both loads against storescp, then
against the appliance. Reported per load: operations per second and the receiver's CPU per
operation (its whole process, so for the appliance also its other components' background
work, measured apart when idle), medians and ranges over the rounds, and the ratio appliance /
DCMTK (ratio of the medians, range of the per-round ratios). Issue 14 targets: CPU per
association at most 2x storescp's, C-ECHO/s at least 0.5x. BENCH_ROUNDS (default 3) and
BENCH_ASSOCIATIONS (default 300) make quick runs.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import (
    cpu_seconds,
    env_int,
    machine,
    median_range,
    paired_ratio,
    peak_rss_mb,
    rounds,
)
from tests.conftest import DCMTK_ENV, ApplianceProcess, free_port, wait_listening, write_config

ECHOES_IN_ONE = 2000
IDLE_SECONDS = 3.0
KINDS = ("dcmtk", "appliance")  # the order of the runs in every round
NAMES = {"dcmtk": "DCMTK storescp", "appliance": "appliance"}
TARGET_CPU_PER_ASSOCIATION = 2.0
TARGET_ECHO_RATE = 0.5


def run_load(port: int, called: str, associations: int, repeat: int) -> float:
    """Seconds for `associations` echoscu runs, each sending `repeat` C-ECHOs."""
    started = time.perf_counter()
    if associations == 1:
        cmd = ["echoscu", "-aec", called, "--repeat", str(repeat), "127.0.0.1", str(port)]
        subprocess.run(cmd, env=DCMTK_ENV, check=True, capture_output=True)
        return time.perf_counter() - started
    # One echoscu process per association (both receivers pay its start-up alike).
    script = f'for i in $(seq {associations}); do echoscu -aec {called} 127.0.0.1 {port} ' \
             '|| exit 1; done'
    subprocess.run(["bash", "-c", script], env=DCMTK_ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(port: int, pid: int, called: str, associations: int) -> dict:
    """Both loads once: rates and the receiver's CPU per operation (ms)."""
    cpu0 = cpu_seconds(pid)
    short = run_load(port, called, associations, 1)
    cpu1 = cpu_seconds(pid)
    long = run_load(port, called, 1, ECHOES_IN_ONE)
    cpu2 = cpu_seconds(pid)
    return {"assoc_per_s": associations / short, "echo_per_s": ECHOES_IN_ONE / long,
            "cpu_per_assoc": 1000 * (cpu1 - cpu0) / associations,
            "cpu_per_echo": 1000 * (cpu2 - cpu1) / ECHOES_IN_ONE}


def idle_cpu_ms_per_s(pid: int) -> float:
    """The receiver's CPU while nothing talks to it, in ms per second."""
    cpu0 = cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)
    return 1000 * (cpu_seconds(pid) - cpu0) / IDLE_SECONDS


class Receivers:
    """`appliance run` and storescp, both listening for the whole benchmark."""

    def __init__(self, tmp: Path):
        self.ports = {"appliance": free_port(), "dcmtk": free_port()}
        config = write_config(tmp / "appliance.toml", {
            "device": {"data_dir": str(tmp / "data")},
            "dicom": {"port": self.ports["appliance"], "bind": "127.0.0.1",
                      "max_associations": 20},
            "web": {"bind": "127.0.0.1", "port": free_port()},
            "log": {"level": "WARNING"}})
        self.appliance = ApplianceProcess(config, tmp / "appliance.log")
        (tmp / "storescp").mkdir()
        self.storescp = subprocess.Popen(
            ["storescp", "-od", str(tmp / "storescp"), str(self.ports["dcmtk"])],
            env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pids = {"appliance": self.appliance.pid, "dcmtk": self.storescp.pid}
        self.called = {"appliance": "EDGEBOX", "dcmtk": "ANY-SCP"}

    def wait(self) -> None:
        self.appliance.wait_ready()
        wait_listening(self.ports["dcmtk"])

    def stop(self) -> None:
        self.appliance.stop()
        self.storescp.send_signal(signal.SIGTERM)
        self.storescp.wait(10)


def table_row(label: str, key: str, results: dict[str, list[dict]], digits: int) -> str:
    ours = [r[key] for r in results["appliance"]]
    theirs = [r[key] for r in results["dcmtk"]]
    return (f"| {label} | {median_range(ours, digits)} | {median_range(theirs, digits)} | "
            f"{paired_ratio(ours, theirs)} |")


def median_ratio(results: dict[str, list[dict]], key: str) -> float:
    """Appliance / storescp, of the medians; NaN when storescp's is too small to measure."""
    ours = statistics.median(r[key] for r in results["appliance"])
    theirs = statistics.median(r[key] for r in results["dcmtk"])
    return ours / theirs if theirs else float("nan")


def verdict(ratio: float, ok: bool) -> str:
    if ratio != ratio:  # NaN
        return "not measurable (under the CPU clock's 10 ms tick: more associations)"
    return f"{ratio:.2f}x, {'met' if ok else 'not met'}"


def main() -> str:
    count, associations = rounds(3), env_int("BENCH_ASSOCIATIONS", 300)
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        receivers = Receivers(Path(tmp))
        try:
            receivers.wait()
            idle = {kind: idle_cpu_ms_per_s(receivers.pids[kind]) for kind in KINDS}
            for number in range(1, count + 1):
                for kind in KINDS:
                    result = measure(receivers.ports[kind], receivers.pids[kind],
                                     receivers.called[kind], associations)
                    results[kind].append(result)
                    print(f"  round {number}/{count} {kind}: {result['assoc_per_s']:.1f} "
                          f"assoc/s, {result['cpu_per_assoc']:.2f} ms CPU/assoc, "
                          f"{result['echo_per_s']:.0f} echo/s", flush=True)
            rss = {kind: peak_rss_mb(receivers.pids[kind]) for kind in KINDS}
        except subprocess.CalledProcessError:
            print(receivers.appliance.log()[-3000:], file=sys.stderr)
            raise
        finally:
            receivers.stop()
    cpu_ratio = median_ratio(results, "cpu_per_assoc")
    echo_ratio = median_ratio(results, "echo_per_s")
    lines = [
        "## Verification (C-ECHO)",
        "",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}. Client: DCMTK echoscu, "
        "TCP_NODELAY=1 on both sides. Reference: DCMTK storescp. Both receivers listen for the "
        f"whole run; {count} rounds, each runs both loads against storescp, then against the "
        f"appliance ({associations} associations with one C-ECHO each, one echoscu process "
        f"per association; then one association with {ECHOES_IN_ONE} C-ECHOs). Median (min–max) "
        "over the rounds; ratio: of the medians, in brackets the range of the per-round ratios. "
        "CPU is the receiver's whole process.",
        "",
        "| measure | appliance | DCMTK storescp | ratio (appliance / DCMTK) |",
        "|---|---|---|---|",
        table_row("associations/s (1 C-ECHO each)", "assoc_per_s", results, 1),
        table_row("receiver CPU per association (ms)", "cpu_per_assoc", results, 2),
        table_row(f"C-ECHO/s (one association, {ECHOES_IN_ONE} echoes)", "echo_per_s",
                  results, 0),
        table_row("receiver CPU per C-ECHO (ms)", "cpu_per_echo", results, 3),
        f"| receiver CPU when idle (ms per second) | {idle['appliance']:.1f} | "
        f"{idle['dcmtk']:.1f} | |",
        f"| receiver peak RSS (MB) | {rss['appliance']:.1f} | {rss['dcmtk']:.1f} | "
        f"{rss['appliance'] / rss['dcmtk']:.2f} |",
        "",
        f"Targets (issue 14), medians: CPU per association at most "
        f"{TARGET_CPU_PER_ASSOCIATION:.0f}x storescp's: "
        f"{verdict(cpu_ratio, cpu_ratio <= TARGET_CPU_PER_ASSOCIATION)}; C-ECHO/s at least "
        f"{TARGET_ECHO_RATE}x: {verdict(echo_ratio, echo_ratio >= TARGET_ECHO_RATE)}. "
        "The appliance's CPU per association includes its idle background (the row above) "
        "for the time the load took. For throughput a ratio "
        "above 1 means faster than DCMTK; for CPU and memory a ratio above 1 means the "
        "appliance uses more.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
    sys.exit(0)
