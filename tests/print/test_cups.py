"""The cups driver against a real CUPS (Debian `cupsd`, started here on a free port with its
own configuration directory and a raw queue writing to a file)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from pynetdicom.sop_class import Printer

from tests.conftest import free_port, wait_listening
from tests.print.conftest import boxes_of


def job_attributes(control: bytes) -> dict[str, bytes]:
    """Name -> first raw value of the attributes in a CUPS job control file (an IPP message:
    version, operation, request id, then tag / name / value groups; RFC 8010 3.1)."""
    attrs: dict[str, bytes] = {}
    at, name = 8, ""
    while at < len(control):
        tag = control[at]
        at += 1
        if tag <= 0x0F:              # a delimiter: group start, or 0x03 end of attributes
            if tag == 0x03:
                break
            continue
        size = struct.unpack(">H", control[at:at + 2])[0]
        name = control[at + 2:at + 2 + size].decode() or name   # empty: another value
        at += 2 + size
        size = struct.unpack(">H", control[at:at + 2])[0]
        attrs.setdefault(name, control[at + 2:at + 2 + size])
        at += 2 + size
    return attrs


pytestmark = pytest.mark.skipif(not shutil.which("cupsd"), reason="Debian package cups needed")


@pytest.fixture
def cups(tmp_path):
    root = tmp_path / "cups"
    for sub in ("spool", "cache", "log", "state", "out"):
        (root / sub).mkdir(parents=True)
    port = free_port()
    (root / "cupsd.conf").write_text(
        f"Listen 127.0.0.1:{port}\nLogLevel warn\nDefaultAuthType None\nBrowsing No\n"
        "WebInterface No\nPreserveJobFiles Yes\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")
    (root / "cups-files.conf").write_text(
        f"FileDevice Yes\nRequestRoot {root}/spool\nCacheDir {root}/cache\n"
        f"StateDir {root}/state\nErrorLog {root}/log/error_log\nAccessLog {root}/log/access\n"
        f"PageLog {root}/log/page_log\nServerRoot {root}\n")
    proc = subprocess.Popen(["cupsd", "-f", "-c", str(root / "cupsd.conf"),
                             "-s", str(root / "cups-files.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)
    server = f"127.0.0.1:{port}"
    out_dir = Path(tempfile.mkdtemp(prefix="cupsout", dir="/tmp"))
    out_dir.chmod(0o777)           # the file backend runs as an unprivileged user
    out = out_dir / "film.out"
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(["lpadmin", "-h", server, "-p", "film", "-E", "-v", f"file://{out}",
                    "-m", "raw"], check=True, capture_output=True, env=env)
    yield server, out, root
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(out_dir, ignore_errors=True)


def test_a_film_reaches_the_cups_queue_and_a_stopped_queue_is_a_failure(cups, print_server,
                                                                         scu):
    server_addr, out, root = cups
    server = print_server([{"name": "film", "driver": "cups", "cups_queue": "film",
                            "cups_server": server_addr, "dpi": 50, "cups_format": "png"}])
    client = scu(server.port)
    assert client.printer()[1].PrinterStatus == "NORMAL"
    client.session()
    _, reply = client.film_box(FilmSizeID="8INX10IN")
    client.set_image(boxes_of(reply)[0], 1, np.zeros((8, 8), np.uint8))
    _, action = client.action()
    job = server.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["status"] == "DONE", job
    spool = root / "spool"
    deadline = time.monotonic() + 15
    while not (list(spool.glob("d*")) and list(spool.glob("c*"))) and \
            time.monotonic() < deadline:   # cupsd writes the control file a little later
        time.sleep(0.1)
    document = next(spool.glob("d*")).read_bytes()
    assert document[:8] == b"\x89PNG\r\n\x1a\n"                  # CUPS holds the film
    # the job options cupsd recorded, from its job control file (IPP attributes)
    options = job_attributes(next(spool.glob("c*")).read_bytes())
    assert options["media"] == b"Custom.203.2x254mm"           # 8 x 10 in
    assert struct.unpack(">iib", options["printer-resolution"]) == (50, 50, 3)   # 50 dpi
    assert options["Resolution"] == b"50dpi"
    assert struct.unpack(">i", options["copies"]) == (1,)
    subprocess.run(["cupsdisable", "-h", server_addr, "film"], check=True)
    info = client.wait_event(Printer, 3, timeout=15)
    assert info.PrinterStatusInfo == "PRINTER DOWN"
    assert client.printer()[1].PrinterStatus == "FAILURE"
