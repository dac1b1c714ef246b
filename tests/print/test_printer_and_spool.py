"""Printer status flowing to SCUs as N-EVENT-REPORT, the sim and file drivers, and the
persisted spool: restart, priority, copies, history and previews."""

from __future__ import annotations

import pickle
import re
import time

import numpy as np
import pytest
from PIL import Image
from pynetdicom.sop_class import Printer

from appliance.config.schema import ApplianceConfig
from appliance.print import layout
from appliance.print.render import FilmSpec
from appliance.print.spool import PrintSpool, QueueFull
from hal.printer import Film, PrinterError, open_printer
from hal.printer.file import FilePrinter
from hal.printer.sim import SimPrinter
from tests.print.conftest import boxes_of

SIM = {"name": "sim1", "driver": "sim", "dpi": 50}


def test_printer_status_change_is_sent_to_every_association(print_server, scu):
    server = print_server([SIM])
    first, second = scu(server.port), scu(server.port)
    assert first.printer()[1].PrinterStatus == "NORMAL"
    second.session()
    server.spool.printers["sim1"].set_condition("SUPPLY EMPTY")
    for client in (first, second):
        info = client.wait_event(Printer, 3)          # 3 = FAILURE
        assert info.PrinterStatusInfo == "SUPPLY EMPTY"
    status, info = first.printer()
    assert (info.PrinterStatus, info.PrinterStatusInfo) == ("FAILURE", "SUPPLY EMPTY")
    server.spool.printers["sim1"].set_condition("NORMAL")
    first.wait_event(Printer, 1)


def test_jobs_wait_while_the_printer_fails_and_print_when_it_recovers(print_server, scu):
    server = print_server([SIM])
    sim: SimPrinter = server.spool.printers["sim1"]
    sim.set_condition("FILM JAM")
    server.spool.poll_status()
    client = scu(server.port)
    client.session(NumberOfCopies="3")
    _, reply = client.film_box()
    client.set_image(boxes_of(reply)[0], 1, np.zeros((8, 8), np.uint8))
    _, action = client.action()
    uid = action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    time.sleep(0.5)
    assert server.spool.job(uid)["status"] == "PENDING"
    assert client.job(uid)[1].ExecutionStatus == "PENDING"
    sim.set_condition("NORMAL")
    assert server.spool.wait_job(uid)["status"] == "DONE"
    assert len(sim.printed) == 3                   # copies honoured


def spool_config(tmp_path, **print_section) -> ApplianceConfig:
    return ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path)}, "printers": [SIM],
        "print": {"status_interval": 0.1, **print_section}})


def spec() -> FilmSpec:
    return FilmSpec(layout.parse_display_format("STANDARD\\1,1"), film_size_id="8INX10IN",
                    dpi=50)


def test_pending_jobs_survive_a_restart(tmp_path):
    spool = PrintSpool(spool_config(tmp_path))
    spool.start()
    spool.printers["sim1"].set_condition("PRINTER DOWN")
    spool.poll_status()
    uid = spool.submit("sim1", [spec()], copies=2)
    spool.stop(5)
    assert (tmp_path / "spool" / f"{uid}.films").exists()
    again = PrintSpool(spool_config(tmp_path, reprint_keep=0))   # films not kept once done
    again.start()
    try:
        assert again.wait_job(uid)["status"] == "DONE"
        assert len(again.printers["sim1"].printed) == 2
        assert not (tmp_path / "spool" / f"{uid}.films").exists()
    finally:
        again.stop(5)


def test_an_idle_spool_worker_waits_for_a_kick_not_a_timer(tmp_path, monkeypatch):
    """With nothing to print the worker looks for a job once and then sleeps until a job is
    submitted or a printer's state changes (it used to look twice a second)."""
    spool = PrintSpool(spool_config(tmp_path))
    looks = []
    look = spool._next_job
    monkeypatch.setattr(spool, "_next_job", lambda: looks.append(1) or look())
    spool.start()
    try:
        time.sleep(1.5)
        assert len(looks) == 1
        uid = spool.submit("sim1", [spec()])
        assert spool.wait_job(uid)["status"] == "DONE"
    finally:
        spool.stop(5)


def test_priority_then_age_and_history_with_previews(tmp_path):
    spool = PrintSpool(spool_config(tmp_path, history=2, preview_px=64))
    spool.start()
    try:
        sim = spool.printers["sim1"]
        sim.set_condition("COVER OPEN")
        spool.poll_status()
        low = spool.submit("sim1", [spec()], priority="LOW", label="low")
        spool.submit("sim1", [spec()], priority="HIGH", label="high")
        spool.submit("sim1", [spec()], priority="MED", label="med")
        sim.set_condition("NORMAL")
        spool.wait_job(low)          # printed last
        assert [f.label for f in sim.printed] == ["high", "med", "low"]
        deadline = time.monotonic() + 5
        while len(spool.jobs()) > 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        history = spool.jobs()
        assert len(history) == 2                       # [print] history = 2
        preview = Image.open(tmp_path / "print" / "previews" / history[0]["previews"])
        assert max(preview.size) == 64
    finally:
        spool.stop(5)


def test_queue_full_and_failed_prints(tmp_path):
    spool = PrintSpool(spool_config(tmp_path, max_queue=1))
    spool.start()
    try:
        spool.printers["sim1"].set_condition("FILM JAM")
        spool.poll_status()
        spool.submit("sim1", [spec()])
        with pytest.raises(QueueFull):
            spool.submit("sim1", [spec()])
    finally:
        spool.stop(5)
    broken = PrintSpool(spool_config(tmp_path / "b"))
    broken.start()
    try:
        (broken.spool_dir / "x").write_bytes(b"")
        uid = broken.submit("sim1", [spec()])
        (broken.spool_dir / f"{uid}.films").write_bytes(pickle.dumps("not films"))
        assert broken.wait_job(uid)["status"] in ("DONE", "FAILURE")
    finally:
        broken.stop(5)


def test_file_driver_writes_png_and_pdf_at_physical_size(tmp_path):
    printer = open_printer("file", "f", directory=tmp_path)
    image = Image.new("L", (400, 500), 128)
    printer.print_film(Film(image, 50, 203.2, 254.0, job_id="j1"))
    png, pdf = printer.paths_for("j1", 1)
    assert Image.open(png).size == (400, 500)
    text = pdf.read_bytes()
    box = re.search(rb"/MediaBox \[ *0 0 ([0-9.]+) ([0-9.]+) *\]", text)
    assert (float(box.group(1)), float(box.group(2))) == (576.0, 720.0)   # 8x10 in in points
    assert printer.status().status == "NORMAL"


def test_file_driver_reports_an_unwritable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    printer = open_printer("file", "f", directory=blocker / "sub")
    assert printer.status().status == "FAILURE"
    with pytest.raises(PrinterError):
        printer.print_film(Film(Image.new("L", (4, 4)), 50, 2, 2))


def test_sim_driver_conditions_and_unknown_driver():
    sim = open_printer("sim", "s")
    sim.set_condition("supply low")
    assert (sim.status().status, sim.status().info) == ("WARNING", "SUPPLY LOW")
    with pytest.raises(PrinterError):
        sim.set_condition("ON FIRE")
    with pytest.raises(PrinterError, match="unknown printer driver"):
        open_printer("laser", "x")
    sim.close()


def test_profile_drivers_are_the_configs_and_dicom_ones_belong_to_print(tmp_path):
    from typing import get_args

    from appliance.print import profiles
    from appliance.print.config import PrinterProfileConfig
    from appliance.print.dicom_printer import DicomPrinter
    from appliance.print.pacs_printer import PacsPrinter

    schema_names = get_args(PrinterProfileConfig.model_fields["driver"].annotation)
    assert sorted(profiles.DRIVERS) == sorted(schema_names)
    assert isinstance(profiles.open_printer("dicom", "d", host="127.0.0.1", called_aet="PRN"),
                      DicomPrinter)
    pacs = profiles.open_printer("pacs", "p", find_context=lambda info: None,
                                 store_instance=lambda ds, info: [])
    assert isinstance(pacs, PacsPrinter)
    assert isinstance(profiles.open_printer("file", "f", directory=tmp_path), FilePrinter)
    with pytest.raises(PrinterError, match="unknown printer driver 'laser': use one of dicom, "
                       "pacs, file, cups, sim"):
        profiles.open_printer("laser", "x")


def test_file_driver_keeps_one_file_per_job_whatever_the_uid(tmp_path):
    printer = open_printer("file", "f", directory=tmp_path)
    uids = ["1.2.826.0.1.3680043.8.498.11", "1.2.826.0.1.3680043.8.498.12", "../../etc/x"]
    for uid in uids:
        for page in (1, 2):
            printer.print_film(Film(Image.new("L", (8, 8), 0), 50, 4, 4, job_id=uid, page=page))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 12 and all(p.parent == tmp_path for p in tmp_path.iterdir())
    assert "1.2.826.0.1.3680043.8.498.11-2.png" in written
    assert "1.2.826.0.1.3680043.8.498.12-1.pdf" in written
