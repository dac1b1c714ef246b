"""The `dicom` printer driver: the box as print spooler/proxy, forwarding each film as a Print
SCU to a real DICOM printer — here a second Print SCP (ours, on its own port, with a simulated
printer), reached over real sockets."""

from __future__ import annotations

import logging
import time

import numpy as np
from PIL import Image
from pydicom import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicFilmBox,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    PrintJob,
)

from appliance.print.dicom_printer import DicomPrinter
from hal.printer import Film, PrinterError
from tests.conftest import free_port
from tests.print.conftest import boxes_of
from tests.print.test_scp import GRADIENT


def printer_behind(print_server, color: bool = False):
    """The DICOM printer (a Print SCP on a sim printer) and a front box whose profile
    forwards to it."""
    back = print_server([{"name": "film", "driver": "sim", "color": color}],
                        dicom={"ae_title": "LASER"})
    front = print_server([{"name": "proxy", "driver": "dicom", "peer": "laser", "color": color,
                           "peer_status_interval": 0.2}],
                         peers=[{"name": "laser", "ae_title": "LASER", "host": "127.0.0.1",
                                 "port": back.port}])
    return back, front


def test_a_film_printed_on_the_box_comes_out_of_the_dicom_printer(print_server, scu, caplog):
    caplog.set_level(logging.INFO, logger="appliance.dicom.association_log")
    back, front = printer_behind(print_server)
    client = scu(front.port)
    client.session(NumberOfCopies="2", MediumType="CLEAR FILM", FilmSessionLabel="chest")
    _, reply = client.film_box("STANDARD\\1,2", FilmSizeID="8INX10IN",
                               FilmOrientation="LANDSCAPE")
    client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    _, action = client.action()
    job = front.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["status"] == "DONE", job
    printed = back.spool.printers["film"].printed
    assert len(printed) == 2                        # two copies, asked of the DICOM printer
    film = printed[0]
    assert (film.film_size_id, film.orientation, film.medium) == ("8INX10IN", "LANDSCAPE",
                                                                   "CLEAR FILM")
    assert film.image.size == (3000, 2400)         # 10 x 8 in at 300 dpi
    assert film.label == "chest"
    pixels = np.asarray(film.image).astype(int)
    # STANDARD\1,2: the gradient fills the width of the upper box (y 225-975), dark to
    # bright; the lower box is empty and prints like the border
    row = pixels[600, 20:2980]
    assert np.all(np.diff(row[::60]) >= 0) and row[-1] - row[0] > 150
    assert pixels[600, 20] < 40 and pixels[600, 2980] > 200
    assert np.ptp(pixels[1300:2400, :]) == 0 and pixels[1800, 1500] == pixels[100, 1500]
    # the printer reports the job by N-EVENT-REPORT: the driver does not poll it with N-GETs
    # (each request is a chance for pynetdicom's race); one Printer N-GET ends the association
    printing = [r.getMessage() for r in caplog.records if "called='LASER'" in r.getMessage()
                and "N-ACTION" in r.getMessage()]
    assert len(printing) == 1 and "operations=[1 N-ACTION, 2 N-CREATE, 1 N-GET, 1 N-SET]" in \
        printing[0], printing


def test_a_color_film_is_forwarded_as_color(print_server, scu):
    back, front = printer_behind(print_server, color=True)
    client = scu(front.port, color=True)
    client.session()
    _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="A4")
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 255
    client.set_image(boxes_of(reply)[0], 1, red)
    _, action = client.action()
    job = front.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["status"] == "DONE", job
    film = back.spool.printers["film"].printed[0]
    assert film.image.mode == "RGB"
    assert film.image.getpixel((film.image.width // 2, film.image.height // 2)) == (255, 0, 0)


def test_dicom_printer_status_and_failures_come_back(print_server, scu):
    back, front = printer_behind(print_server)
    client = scu(front.port)
    assert client.printer()[1].PrinterStatus == "NORMAL"   # the SCU now uses this printer
    back.spool.printers["film"].set_condition("FILM JAM")
    info = client.wait_event("1.2.840.10008.5.1.1.16", 3)   # Printer FAILURE reaches our SCU
    assert info.PrinterStatusInfo == "FILM JAM"
    status, printer = client.printer()
    assert (printer.PrinterStatus, printer.PrinterStatusInfo) == ("FAILURE", "FILM JAM")
    back.spool.printers["film"].set_condition("NORMAL")
    client.wait_event("1.2.840.10008.5.1.1.16", 1)


def test_a_film_the_dicom_printer_fails_is_a_failed_job():
    # the printer accepts the job and reports FAILURE: the driver must not take it as printed
    port = free_port()
    ae = AE(ae_title="BADPRINTER")
    ae.add_supported_context(BasicGrayscalePrintManagementMeta)
    ae.add_supported_context(PrintJob)

    def create(event):
        ds = Dataset()
        if event.request.AffectedSOPClassUID == BasicFilmBox:
            item = Dataset()
            item.ReferencedSOPClassUID = BasicGrayscaleImageBox
            item.ReferencedSOPInstanceUID = "1.2.3.4"
            ds.ReferencedImageBoxSequence = [item]
        return 0x0000, ds

    def action(event):
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = PrintJob, "1.2.3.5"
        ds = Dataset()
        ds.ReferencedPrintJobSequence = [item]
        return 0x0000, ds

    def get(event):
        ds = Dataset()
        ds.ExecutionStatus, ds.ExecutionStatusInfo = "FAILURE", "FILM JAM"
        return 0x0000, ds

    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_N_CREATE, create), (evt.EVT_N_SET, lambda e: (0x0000, Dataset())),
        (evt.EVT_N_ACTION, action), (evt.EVT_N_GET, get)])
    try:
        printer = DicomPrinter("bad", host="127.0.0.1", port=port, called_aet="BADPRINTER")
        film = Film(image=Image.new("L", (100, 120), 255), dpi=300,
                    width_mm=8.5, height_mm=10.2, film_size_id="8INX10IN")
        started = time.monotonic()
        try:
            printer.print_film(film)
        except PrinterError as exc:
            assert "print job failed (FILM JAM)" in str(exc)
        else:
            raise AssertionError("a failed print job was taken as printed")
        assert time.monotonic() - started < 10
    finally:
        server.shutdown()


def test_an_unreachable_dicom_printer_is_printer_down():
    printer = DicomPrinter("gone", host="127.0.0.1", port=free_port(), called_aet="GONE",
                           timeout=3)
    state = printer.status()
    assert (state.status, state.info) == ("FAILURE", "PRINTER DOWN")
    film = Film(image=Image.new("L", (10, 10)), dpi=300, width_mm=1,
                height_mm=1)
    try:
        printer.print_film(film)
    except PrinterError as exc:
        assert "GONE@127.0.0.1" in str(exc)
    else:
        raise AssertionError("printing to nowhere succeeded")


def test_a_film_goes_to_a_dicom_printer_over_tls(print_server, scu, pki):
    """`[[peers]] tls = true` on the printer's peer: the film travels over TLS, the printer
    (a Print SCP on the engine's TLS port, client certificates required) checks ours."""
    files = {"certificate": str(pki / "box.pem"), "private_key": str(pki / "box.key"),
             "ca_certificates": str(pki / "ca.pem")}
    back = print_server([{"name": "film", "driver": "sim"}],
                        dicom={"ae_title": "LASER",
                               "tls": {"enabled": True, "port": free_port(), **files}})
    front = print_server([{"name": "proxy", "driver": "dicom", "peer": "laser",
                           "peer_status_interval": 0.2}],
                         dicom={"tls": {**files, "certificate": str(pki / "modality.pem"),
                                        "private_key": str(pki / "modality.key")}},
                         peers=[{"name": "laser", "ae_title": "LASER", "host": "127.0.0.1",
                                 "port": back.server.tls_port, "tls": True}])
    client = scu(front.port)
    client.session(NumberOfCopies="1")
    _, reply = client.film_box("STANDARD\\1,1")
    client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    _, action = client.action()
    job = front.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["status"] == "DONE", job
    assert len(back.spool.printers["film"].printed) == 1
