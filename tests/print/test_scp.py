"""The Print SCP state machine over a real association: N-CREATE / N-SET / N-GET / N-ACTION /
N-DELETE semantics, status codes and warnings, Printer and Print Job."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydicom import Dataset
from pynetdicom.sop_class import (
    BasicAnnotationBox,
    BasicFilmBox,
    BasicFilmSession,
    PresentationLUT,
    PrintJob,
)

from tests.print.conftest import boxes_of, reference

GRADIENT = np.tile(np.arange(256, dtype=np.uint8), (64, 1))


def test_full_grayscale_session_prints_a_file(print_server, scu):
    server = print_server()
    client = scu(server.port)
    status, reply = client.session(NumberOfCopies="2", PrintPriority="HIGH",
                                   FilmSessionLabel="CT chest")
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID
    status, reply = client.film_box("STANDARD\\2,2", FilmSizeID="8INX10IN")
    assert status.Status == 0x0000
    assert len(boxes_of(reply)) == 4          # the SCP created four image boxes
    assert reply.ReferencedFilmSessionSequence[0].ReferencedSOPInstanceUID == client.session_uid
    for position, uid in enumerate(boxes_of(reply), start=1):
        status, _ = client.set_image(uid, position, GRADIENT)
        assert status.Status == 0x0000
    status, action = client.action()
    assert status.Status == 0x0000
    job_uid = action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    job = server.spool.wait_job(job_uid)
    assert job["status"] == "DONE" and job["copies"] == 2 and job["priority"] == 0
    png = server.spool.printers["default"].paths_for(job_uid, 1)[0]
    assert png.exists()
    status, info = client.job(job_uid)
    assert status.Status == 0x0000 and info.ExecutionStatus == "DONE"
    assert info.PrintPriority == "HIGH" and info.Originator == "PRINTSCU"


def test_print_job_events_reach_the_scu(print_server, scu):
    server = print_server()
    client = scu(server.port)
    client.session()
    client.film_box()
    status, action = client.action()
    assert status.Status == 0xB603  # empty page: warning, still printed
    assert action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    client.wait_event(PrintJob, 3)   # DONE
    assert (PrintJob, 1, ) in {(c, k) for c, k, _ in client.events}  # PENDING came first


def test_printer_n_get_reports_status_and_identity(print_server, scu):
    server = print_server()
    client = scu(server.port)
    status, info = client.printer()
    assert status.Status == 0x0000
    assert info.PrinterStatus == "NORMAL" and info.PrinterStatusInfo == "NORMAL"
    assert info.PrinterName == "default"
    assert info.Manufacturer and info.ManufacturerModelName and info.SoftwareVersions
    assert info.DateOfLastCalibration and info.TimeOfLastCalibration
    status, only = client.printer([0x21100010])   # Printer Status only
    assert list(only.keys()) == [0x21100010]


def test_film_box_without_session_fails(print_server, scu):
    client = scu(print_server().port)
    status, _ = client.film_box("STANDARD\\1,1", session_uid="1.2.3.4")
    assert status.Status == 0x0106


def test_second_film_session_is_refused(print_server, scu):
    client = scu(print_server().port)
    assert client.session()[0].Status == 0x0000
    assert client.session()[0].Status == 0x0111


def test_film_box_referencing_another_session_fails(print_server, scu):
    client = scu(print_server().port)
    client.session()
    status, _ = client.film_box("STANDARD\\1,1", session_uid="1.2.3.4")
    assert status.Status == 0x0106


def test_image_box_out_of_range_and_unknown_uid(print_server, scu):
    client = scu(print_server().port)
    client.session()
    _, reply = client.film_box("STANDARD\\1,2")
    uid = boxes_of(reply)[0]
    status, _ = client.set_image(uid, 3, GRADIENT)   # box 1 told it is position 3
    assert status.Status == 0x0106
    status, _ = client.set_image("1.2.3.999", 1, GRADIENT)
    assert status.Status == 0x0112


def test_bad_pixel_module_is_refused(print_server, scu):
    client = scu(print_server().port)
    client.session()
    _, reply = client.film_box()
    uid = boxes_of(reply)[0]
    ds = Dataset()
    ds.ImageBoxPosition = 1
    item = Dataset()
    item.SamplesPerPixel = 1
    item.PhotometricInterpretation = "MONOCHROME2"
    item.Rows = item.Columns = 16
    item.BitsAllocated = item.BitsStored = 8
    item.HighBit = 7
    item.PixelRepresentation = 0
    item.PixelData = b"\0" * 100    # 256 bytes expected
    ds.BasicGrayscaleImageSequence = [item]
    status, _ = client.set(client.image_class, uid, ds)
    assert status.Status == 0x0106
    item.PixelData = b"\0" * 256
    item.PhotometricInterpretation = "PALETTE COLOR"
    status, _ = client.set(client.image_class, uid, ds)
    assert status.Status == 0x0106
    del item.Rows
    item.PhotometricInterpretation = "MONOCHROME2"
    status, _ = client.set(client.image_class, uid, ds)
    assert status.Status == 0x0120


def test_session_action_without_film_boxes_fails_c600(print_server, scu):
    client = scu(print_server().port)
    client.session()
    status, _ = client.action(BasicFilmSession)
    assert status.Status == 0xC600


def test_session_action_prints_every_film_box(print_server, scu):
    server = print_server()
    client = scu(server.port)
    client.session()
    for _ in range(3):
        _, reply = client.film_box("STANDARD\\1,1")
        client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    status, action = client.action(BasicFilmSession)
    assert status.Status == 0x0000
    job = server.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["status"] == "DONE" and job["films"] == 3


def test_unsupported_optional_attribute_is_a_warning(print_server, scu):
    client = scu(print_server().port)
    status, _ = client.session(ProposedStudySequence=[])
    assert status.Status == 0x0107        # warning, film session created
    assert status.AffectedSOPInstanceUID
    status, _ = client.film_box()
    assert status.Status == 0x0000


def test_density_out_of_range_warns_and_is_clamped(print_server, scu):
    client = scu(print_server().port)
    client.session()
    status, reply = client.film_box(MinDensity=5, MaxDensity=450)
    assert status.Status == 0xB605
    assert (reply.MinDensity, reply.MaxDensity) == (20, 300)


def test_unsupported_film_size_and_format_fail(print_server, scu):
    client = scu(print_server([{"name": "small", "film_sizes": ["8INX10IN"],
                                "default_film_size": "8INX10IN"}]).port)
    client.session()
    assert client.film_box(FilmSizeID="14INX17IN")[0].Status == 0x0106
    assert client.film_box("SLIDE")[0].Status == 0x0106
    assert client.film_box("STANDARD\\0,1")[0].Status == 0x0106


def test_medium_not_offered_fails(print_server, scu):
    client = scu(print_server([{"name": "paper", "media": ["PAPER"],
                                "default_medium": "PAPER"}]).port)
    assert client.session(MediumType="BLUE FILM")[0].Status == 0x0106


def test_crop_decimate_and_fail_statuses(print_server, scu):
    client = scu(print_server().port)
    client.session()
    _, reply = client.film_box("STANDARD\\2,2", FilmSizeID="8INX10IN")
    uids = boxes_of(reply)
    big = np.zeros((64, 64), np.uint8)
    # 150 mm wide does not fit a 101.6 mm wide box
    assert client.set_image(uids[0], 1, big, RequestedImageSize="150",
                            RequestedDecimateCropBehavior="CROP")[0].Status == 0xB609
    assert client.set_image(uids[1], 2, big, RequestedImageSize="150",
                            RequestedDecimateCropBehavior="DECIMATE")[0].Status == 0xB60A
    assert client.set_image(uids[2], 3, big, RequestedImageSize="150",
                            RequestedDecimateCropBehavior="FAIL")[0].Status == 0xC603
    huge = np.zeros((2000, 2000), np.uint8)   # more pixels than the box: demagnified
    assert client.set_image(uids[3], 4, huge)[0].Status == 0xB604


def test_film_box_delete_and_session_delete(print_server, scu):
    client = scu(print_server().port)
    client.session()
    client.film_box()
    assert client.delete(BasicFilmBox, client.film_box_uid).Status == 0x0000
    assert client.action()[0].Status == 0x0112      # gone
    assert client.delete(BasicFilmSession, client.session_uid).Status == 0x0000
    assert client.film_box()[0].Status == 0x0106    # no session any more


def test_presentation_lut_create_reference_and_delete(print_server, scu):
    client = scu(print_server().port)
    lut = Dataset()
    lut.PresentationLUTShape = "LIN OD"
    status, reply = client.create(PresentationLUT, lut)
    assert status.Status == 0x0000 and reply.PresentationLUTShape == "LIN OD"
    lut_uid = status.AffectedSOPInstanceUID
    # interop: the LUT referenced from the film session rather than the film box
    status, _ = client.session(
        ReferencedPresentationLUTSequence=[reference(PresentationLUT, lut_uid)])
    assert status.Status == 0x0000
    status, _ = client.film_box(
        ReferencedPresentationLUTSequence=[reference(PresentationLUT, "1.2.3.4")])
    assert status.Status == 0x0106           # unknown LUT
    bad = Dataset()
    bad.PresentationLUTShape = "LOG"
    assert client.create(PresentationLUT, bad)[0].Status == 0x0106
    assert client.delete(PresentationLUT, lut_uid).Status == 0x0000
    assert client.delete(PresentationLUT, lut_uid).Status == 0x0112


def test_annotation_boxes_are_created_and_set(print_server, scu):
    client = scu(print_server().port)
    client.session()
    status, reply = client.film_box(AnnotationDisplayFormatID="TOP_BOTTOM")
    assert status.Status == 0x0000
    notes = [str(i.ReferencedSOPInstanceUID) for i in reply.ReferencedBasicAnnotationBoxSequence]
    assert len(notes) == 2
    ds = Dataset()
    ds.AnnotationPosition = 2
    ds.TextString = "LEFT KNEE"
    status, echo = client.set(BasicAnnotationBox, notes[1], ds)
    assert status.Status == 0x0000 and echo.TextString == "LEFT KNEE"
    ds.AnnotationPosition = 1
    assert client.set(BasicAnnotationBox, notes[1], ds)[0].Status == 0x0106


def test_scu_that_names_instance_uids_and_gets_a_data_set_back(print_server, scu):
    client = scu(print_server().port)
    ds = Dataset()
    ds.NumberOfCopies = "1"
    status, reply = client.create(BasicFilmSession, ds, uid="1.2.826.0.1.3680043.2.1")
    assert status.Status == 0x0000
    assert status.AffectedSOPClassUID == BasicFilmSession
    assert status.AffectedSOPInstanceUID == "1.2.826.0.1.3680043.2.1"
    assert reply is not None and reply.NumberOfCopies == 1


def test_queue_full_is_c602(print_server, scu):
    server = print_server([{"name": "jammed", "driver": "sim"}], max_queue=1)
    server.spool.printers["jammed"].set_condition("FILM JAM")   # nothing leaves the queue
    server.spool.poll_status()
    client = scu(server.port)
    client.session()
    client.film_box()
    assert client.action()[0].Status in (0x0000, 0xB603)
    assert client.action()[0].Status == 0xC602


def test_state_is_per_association(print_server, scu):
    server = print_server()
    first, second = scu(server.port), scu(server.port)
    first.session()
    first.film_box()
    assert second.action(BasicFilmBox, first.film_box_uid)[0].Status == 0x0112


def test_every_print_job_keeps_its_own_film_files(print_server, scu):
    """Field trial: job UIDs that share everything up to the last dot all wrote one file."""
    server = print_server()
    printer = server.spool.printers["default"]
    jobs = []
    for shade in (40, 120, 200):
        client = scu(server.port)
        client.session()
        reply = client.film_box("STANDARD\\1,1")[1]
        client.set_image(boxes_of(reply)[0], 1, np.full((64, 64), shade, dtype=np.uint8))
        job_uid = client.action()[1].ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
        assert server.spool.wait_job(job_uid)["status"] == "DONE"
        jobs.append(job_uid)
    prefixes = {uid.rsplit(".", 1)[0] for uid in jobs}
    assert len(prefixes) == 1, "the job UIDs should share everything up to the last dot"
    files = [printer.paths_for(uid, 1) for uid in jobs]
    assert len({png for png, _ in files} | {pdf for _, pdf in files}) == 6
    assert all(png.exists() and pdf.exists() for png, pdf in files)
    # each film holds its own job's picture, not the last job's
    shades = [Image.open(png).convert("L").getextrema() for png, _ in files]
    assert len(set(shades)) == 3
