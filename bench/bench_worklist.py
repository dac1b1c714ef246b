"""Modality Worklist C-FIND: the appliance against DCMTK `wlmscpfs` on the same items and the
same queries (exact Patient ID, patient name wildcard, SPS date range + modality), at 1,000 and
10,000 items, and the appliance alone at 100,000.

Two ways of asking: many queries over one open association (pynetdicom SCU), and one DCMTK
`findscu` process per query, from which the time of one `echoscu` process (start-up plus
association, the C-ECHO baseline) is subtracted. Every DCMTK process runs with TCP_NODELAY=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from bench.report import machine

REPO = Path(__file__).resolve().parents[1]
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
SURNAMES = ["SMITH", "JONES", "BROWN", "TAYLOR", "WILSON", "DAVIES", "EVANS", "THOMAS",
            "JOHNSON", "ROBERTS", "WALKER", "WRIGHT", "ROBINSON", "THOMPSON", "WHITE", "HUGHES",
            "EDWARDS", "GREEN", "HALL", "WOOD", "HARRIS", "LEWIS", "MARTIN", "JACKSON",
            "CLARKE", "CLARK", "TURNER", "HILL", "SCOTT", "COOPER", "MORRIS", "WARD", "MOORE",
            "KING", "WATSON", "BAKER", "HARRISON", "MORGAN", "PATEL", "YOUNG"]
GIVEN = ["JOHN", "MARY", "JAMES", "ANNA", "PETER", "LINDA", "PAUL", "SARAH", "MARK", "EMMA",
         "DAVID", "LAURA", "JOSEPH", "KATE", "ROBERT", "JUDY", "SIMON", "ALICE", "KEVIN",
         "RUTH", "BRIAN", "CLARE", "TOM"]
SYLLABLES = ["KA", "LO", "MER", "BRA", "TEN", "VIS", "DO", "RAN", "SU", "PEL", "GOR", "NI",
             "FA", "WEL", "TRI", "HOL", "ZAN", "QUI", "MOS", "BE"]
MODALITIES = ["CT", "MR", "US", "CR", "DX", "MG", "NM", "XA"]
MIN_REPEATS, MAX_REPEATS = 10, 1000  # queries of each kind over one association
PROCESS_ROUNDS = 11  # findscu processes of each kind (each paired with an echoscu)


def surname(n: int) -> str:
    """One of 40 x 400 surnames (e.g. WILSONKAMER), so a surname wildcard finds a handful."""
    k = n // len(SURNAMES)
    return (SURNAMES[n % len(SURNAMES)] + SYLLABLES[k % 20] + SYLLABLES[(k // 20) % 20])


def make_items(count: int) -> list[Dataset]:
    items = []
    for n in range(count):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientID = f"P{n:07d}"
        ds.PatientName = f"{surname(n)}^{GIVEN[(n // 7) % len(GIVEN)]}"
        ds.PatientBirthDate = f"19{40 + n % 60:02d}0{1 + n % 9}1{n % 10}"
        ds.PatientSex = "MF"[n % 2]
        ds.AccessionNumber = f"ACC{n:08d}"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.{n + 1}"
        ds.RequestedProcedureID = f"RP{n}"
        ds.RequestedProcedureDescription = "EXAMINATION"
        ds.ReferringPhysicianName = "REFERRER^RITA"
        sps = Dataset()
        day = n % 730
        sps.ScheduledStationAETitle = f"STATION{n % 20}"
        sps.ScheduledProcedureStepStartDate = time.strftime(
            "%Y%m%d", time.gmtime(1767225600 + day * 86400))  # from 2026-01-01
        sps.ScheduledProcedureStepStartTime = f"{7 + n % 12:02d}{(n * 7) % 60:02d}00"
        sps.Modality = MODALITIES[(n // 3) % len(MODALITIES)]
        sps.ScheduledPerformingPhysicianName = "TECH^TOM"
        sps.ScheduledProcedureStepID = f"SPS{n}"
        sps.ScheduledProcedureStepDescription = "STEP"
        ds.ScheduledProcedureStepSequence = [sps]
        items.append(ds)
    return items


def return_keys() -> list[tuple[str, str]]:
    return [("PatientName", ""), ("PatientID", ""), ("PatientBirthDate", ""),
            ("PatientSex", ""), ("AccessionNumber", ""), ("StudyInstanceUID", ""),
            ("RequestedProcedureID", ""), ("RequestedProcedureDescription", "")]


SPS_RETURN = ["ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
              "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID"]


def queries(count: int) -> dict[str, tuple[dict, dict]]:
    """name -> (top-level keys, SPS keys), each value '' = return key."""
    probe = count // 2
    return {
        "exact Patient ID": ({"PatientID": f"P{probe:07d}"}, {}),
        "name wildcard": ({"PatientName": f"{surname(probe)}*"}, {}),
        "date range + modality": ({}, {"ScheduledProcedureStepStartDate": "20260310-20260311",
                                       "Modality": "MR"}),
    }


def findscu_args(top: dict, sps_keys: dict) -> list[str]:
    args = ["-k", "SpecificCharacterSet=ISO_IR 100"]
    for keyword, value in return_keys():
        args += ["-k", f"{keyword}={top.get(keyword, value)}"]
    for keyword in SPS_RETURN:
        args += ["-k", f"ScheduledProcedureStepSequence[0].{keyword}={sps_keys.get(keyword, '')}"]
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


# -- the two servers ------------------------------------------------------------------------

def start_wlmscpfs(work: Path, items: list[Dataset]) -> tuple[subprocess.Popen, int, str]:
    folder = work / "wlm" / "WLMSCP"
    folder.mkdir(parents=True)
    (folder / "lockfile").touch()
    for n, ds in enumerate(items):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"i{n:07d}.wl", enforce_file_format=True)
    port = free_port()
    proc = subprocess.Popen(["wlmscpfs", "-dfp", str(work / "wlm"), "-dhl", "-dfr", "-s",
                             str(port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port, "WLMSCP"


def start_appliance(work: Path, items: list[Dataset]) -> tuple[subprocess.Popen, int, str]:
    from appliance.worklist.item import items_from_dataset
    from appliance.worklist.store import WorklistStore

    data = work / "data"
    store = WorklistStore.in_data_dir(data)
    store.put([i for ds in items for i in items_from_dataset(ds)], "bench")
    store.db.close()
    port = free_port()
    config = work / "appliance.toml"
    config.write_text(tomli_w.dumps({
        "device": {"data_dir": str(data)},
        "dicom": {"port": port, "bind": "127.0.0.1"},
        "worklist": {"expire_after_hours": 0.0, "max_answers": 100000},
        "web": {"bind": "127.0.0.1", "port": free_port()},
        "log": {"level": "WARNING"}}))
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config)],
                            cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port, "EDGEBOX"


# -- measuring ------------------------------------------------------------------------------

def _timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=900)
    return (time.perf_counter() - started) * 1000


def over_one_association(port: int, aet: str, count: int) -> dict[str, tuple[float, int]]:
    """ms per query over one association, and the number of answers, per query kind:
    (`findscu --repeat N+1` - `findscu --repeat 1`) / N, each the best of three runs, with N
    chosen so that the repeats take about three seconds (process start-up noise is ~50 ms)."""
    results = {}
    for name, (top, sps) in queries(count).items():
        args = ["findscu", "-W", "-aec", aet, *findscu_args(top, sps), "127.0.0.1", str(port)]
        one = min(_timed(args + ["--repeat", "1"]) for _ in range(3))
        rough = (_timed(args + ["--repeat", "11"]) - one) / 10
        repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, 3000 / max(rough, 1.0))))
        many = min(_timed(args + ["--repeat", str(repeats + 1)]) for _ in range(3))
        results[name] = ((many - one) / repeats, count_answers(args))
    return results


def count_answers(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(args[:2] + ["-X", "-od", out] + args[2:], env=DCMTK_ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
        return len(list(Path(out).glob("rsp*.dcm")))


def process_per_query(port: int, aet: str, count: int) -> dict[str, float]:
    """Median over runs of (one findscu process - one echoscu process), in ms."""
    echo = ["echoscu", "-aec", aet, "127.0.0.1", str(port)]
    out = {}
    for name, (top, sps) in queries(count).items():
        args = ["findscu", "-W", "-aec", aet, *findscu_args(top, sps), "127.0.0.1", str(port)]
        out[name] = statistics.median(_timed(args) - _timed(echo)
                                      for _ in range(PROCESS_ROUNDS))
    return out


def measure(kind: str, count: int) -> tuple[dict, dict]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-wl-{kind}-"))
    starter = start_wlmscpfs if kind == "wlmscpfs" else start_appliance
    proc = None
    try:
        proc, port, aet = starter(work, make_items(count))
        return over_one_association(port, aet, count), process_per_query(port, aet, count)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def _ratio(ours: float, theirs: float) -> str:
    if theirs <= 0 or ours < 0:
        return "n/a (noise)"
    return f"{ours / theirs:.3f}"


def main() -> str:
    lines = ["## Modality Worklist C-FIND", "",
             f"Machine: {machine()}. *One association*: time of `findscu -W --repeat N+1` "
             "minus `--repeat 1`, divided by N (N chosen for about 3 s of queries, "
             f"{MIN_REPEATS}-{MAX_REPEATS}; best of 3). *findscu "
             "process*: median over "
             f"{PROCESS_ROUNDS} runs of one `findscu -W` process minus one `echoscu` process "
             "(start-up + association + C-ECHO baseline); noisy, since process start-up "
             "dominates. Ratio = appliance / wlmscpfs (below 1: the appliance is faster). "
             "Target: at 10,000 items at most 0.1 of wlmscpfs; at 100,000 under 20 ms per query. "
             "Items: surnames from 16,000, dates over two years, 8 modalities, 20 stations; "
             "every query returns 13 attributes.", "",
             "| items | query | answers | appliance, one association (ms) | wlmscpfs, one "
             "association (ms) | ratio | appliance, findscu process (ms) | wlmscpfs, findscu "
             "process (ms) | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for count in (1000, 10000, 100000):
        ours_assoc, ours_proc = measure("appliance", count)
        theirs_assoc, theirs_proc = measure("wlmscpfs", count) if count <= 10000 else ({}, {})
        for name, (ms, answers) in ours_assoc.items():
            if theirs_assoc:
                their_ms, their_answers = theirs_assoc[name]
                if their_answers != answers:
                    answers = f"{answers} (wlmscpfs {their_answers})"
                cells = [f"{ms:.1f}", f"{their_ms:.1f}", _ratio(ms, their_ms),
                         f"{ours_proc[name]:.1f}", f"{theirs_proc[name]:.1f}",
                         _ratio(ours_proc[name], theirs_proc[name])]
            else:
                cells = [f"{ms:.1f}", "–", "–", f"{ours_proc[name]:.1f}", "–", "–"]
            lines.append(f"| {count:,} | {name} | {answers} | " + " | ".join(cells) + " |")
        print(f"worklist bench: {count} items done", file=sys.stderr, flush=True)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
