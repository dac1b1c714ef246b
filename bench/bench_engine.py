"""Quick benchmark of the native engine (issue 14, first layer) against DCMTK storescp: the
same storescu sender, TCP_NODELAY on every side, maximum PDU 131072 bytes, rounds alternating
between the receivers. Not part of `make bench` yet: run `python -m bench.bench_engine
[images] [rounds]` (storage) or `python -m bench.bench_engine echo [rounds]` (C-ECHO: 300
associations of one C-ECHO each, then 2,000 C-ECHOs on one association).

The engine receiver is `python -m bench.bench_engine serve PORT DIR`: a `DicomEngine` whose store
callback renames each file into DIR and answers Success, with no flush (`--fsync`: fsync of the
file and of DIR before Success). storescp writes without any flush either, so the plain case
measures the engine's own cost: socket to file plus one Python call per image.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pydicom.uid import CTImageStorage

from bench.bench_storage import ENV, PDU, make_images, send
from bench.bench_verification import ASSOCIATIONS, ECHOES_IN_ONE, run_load
from bench.report import cpu_seconds
from tests.conftest import free_port, wait_listening


def serve(port: int, directory: Path, fsync: bool) -> None:
    """The engine receiver process (until SIGTERM)."""
    from appliance.dicom.engine import DicomEngine, EngineSettings
    from appliance.dicom.storage import STORAGE_TRANSFER_SYNTAXES

    directory.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)

    def on_store(path, calling, called, sop_class, sop_instance, syntax):
        target = directory / f"{sop_instance}.dcm"
        if fsync:
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        os.rename(path, target)
        if fsync:
            os.fsync(dir_fd)
        return 0

    settings = EngineSettings(bind="127.0.0.1", port=port, max_pdu=PDU, contexts={
        CTImageStorage: tuple(STORAGE_TRANSFER_SYNTAXES),
        "1.2.840.10008.1.1": ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")})
    engine = DicomEngine(settings, directory / ".incoming", on_store)
    engine.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    engine.stop(grace=1)


def receiver(kind: str, work: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    out = work / f"{kind}-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if kind == "storescp":
        cmd = ["storescp", "-pdu", str(PDU), "-aet", "EDGEBOX", "-od", str(out), str(port)]
    else:
        cmd = [sys.executable, "-m", "bench.bench_engine", "serve", str(port), str(out)]
        if kind == "engine+fsync":
            cmd.append("--fsync")
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=None)
    wait_listening(port, 30)
    time.sleep(0.3)
    return proc, port, out


def run(kind: str, work: Path, files: list[Path], associations: int) -> tuple[float, float]:
    """(images/s, receiver CPU ms per image)."""
    proc, port, out = receiver(kind, work)
    try:
        cpu0 = cpu_seconds(proc.pid)
        wall = send(port, files, associations)
        cpu = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(out, ignore_errors=True)
    return len(files) / wall, cpu * 1000 / len(files)


def main(images: int = 300, rounds: int = 3) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-engine-", dir=os.environ.get("BENCH_TMP")))
    try:
        files = make_images(work / "ct", images, 512, 512, CTImageStorage, "CT")
        kinds = ["storescp", "engine", "engine+fsync"]
        for associations in (1, 2):
            results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
            for _ in range(rounds):
                for kind in kinds:
                    results[kind].append(run(kind, work, files, associations))
            print(f"\n{images} CT 512x512x16, {associations} association(s), {rounds} rounds")
            print_ranges(results, ("images/s", "CPU ms/image"), 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_ranges(results: dict[str, list[tuple[float, float]]], headings: tuple[str, str],
                 cpu_digits: int) -> None:
    """A table of each receiver's (rate, CPU) rounds as ranges, with its rate against
    storescp's in the same round."""
    base = results["storescp"]
    print(f"| receiver | {headings[0]} | {headings[1]} | x storescp (same round) |")
    print("|---|---|---|---|")
    for kind, rounds in results.items():
        rates = [rate for rate, _ in rounds]
        cpus = [cpu for _, cpu in rounds]
        ratios = [rate / ref for (rate, _), (ref, _) in zip(rounds, base, strict=True)]
        print(f"| {kind} | {min(rates):.0f}-{max(rates):.0f} | "
              f"{min(cpus):.{cpu_digits}f}-{max(cpus):.{cpu_digits}f} | "
              f"{min(ratios):.2f}-{max(ratios):.2f} |")


def echo(rounds: int = 3) -> None:
    """C-ECHO: associations/s and CPU ms per association; C-ECHO/s on one association."""
    work = Path(tempfile.mkdtemp(prefix="bench-engine-", dir=os.environ.get("BENCH_TMP")))
    try:
        kinds = ["storescp", "engine"]
        for label, associations, repeat in [("associations", ASSOCIATIONS, 1),
                                            ("C-ECHOs on one association", 1, ECHOES_IN_ONE)]:
            results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
            for _ in range(rounds):
                for kind in kinds:
                    proc, port, out = receiver(kind, work)
                    try:
                        cpu0 = cpu_seconds(proc.pid)
                        wall = run_load(port, "EDGEBOX", associations, repeat)
                        cpu = cpu_seconds(proc.pid) - cpu0
                    finally:
                        proc.terminate()
                        proc.wait(30)
                    count = associations * repeat
                    results[kind].append((count / wall, cpu * 1000 / count))
            print(f"\n{label}, {rounds} rounds")
            print_ranges(results, ("per second", "CPU ms each"), 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["echo"]:
        echo(*(int(arg) for arg in sys.argv[2:3]))
    elif sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), Path(sys.argv[3]), "--fsync" in sys.argv[4:])
    else:
        main(*(int(arg) for arg in sys.argv[1:3]))
