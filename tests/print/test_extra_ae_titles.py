"""Extra AE titles bound to printer profiles: one box answers as several printers, with the
called AE title still checked strictly (any other title is refused), tested with DCMTK."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.sop_class import BasicGrayscalePrintManagementMeta

from tests.conftest import echoscu
from tests.print.conftest import boxes_of
from tests.print.test_scp import GRADIENT

PRINTERS = [{"name": "main", "driver": "sim"},
            {"name": "dryview", "driver": "sim", "ae_title": "DRYVIEW", "printer_name": "Dry"}]


def test_extra_title_is_accepted_and_unknown_title_refused_with_strict_checking(print_server):
    server = print_server(PRINTERS, dicom={"strict_called_aet": True})
    assert server.config.dicom.strict_called_aet
    assert echoscu(server.port, "EDGEBOX").returncode == 0
    extra = echoscu(server.port, "DRYVIEW")
    assert extra.returncode == 0, extra.stderr
    unknown = echoscu(server.port, "NOTAPRINTER")
    assert unknown.returncode != 0
    assert "Called AE Title Not Recognized" in unknown.stderr


def test_the_called_extra_title_prints_on_its_profile(print_server, scu):
    server = print_server(PRINTERS)
    client = scu(server.port, called="DRYVIEW")
    assert client.assoc.acceptor.ae_title == "DRYVIEW"   # the A-ASSOCIATE-AC answers as it
    status, info = client.printer()
    assert info.PrinterName == "Dry"
    client.session()
    _, reply = client.film_box()
    client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    _, action = client.action()
    job = server.spool.wait_job(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert job["printer"] == "dryview" and job["status"] == "DONE"
    assert len(server.spool.printers["dryview"].printed) == 1
    assert server.spool.printers["main"].printed == []
    main = scu(server.port, called="EDGEBOX")
    assert main.printer()[1].PrinterName == "main"


def test_a_reload_adding_a_title_applies_to_new_associations(print_server):
    server = print_server([{"name": "main", "driver": "sim"}])
    assert echoscu(server.port, "LASER2").returncode != 0
    data = server.config.model_dump()
    data["printers"].append({**PRINTERS[1], "ae_title": "LASER2"})
    new = type(server.config).model_validate(data)
    server.spool.reconfigure(new)
    server.server.reconfigure(new)
    assert echoscu(server.port, "LASER2").returncode == 0


def test_print_disabled_offers_no_print_contexts_and_no_extra_titles(print_server):
    server = print_server(PRINTERS, enabled=False)
    assert echoscu(server.port, "DRYVIEW").returncode != 0
    ae = AE(ae_title="PRINTSCU")
    ae.add_requested_context(BasicGrayscalePrintManagementMeta)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
    assert not assoc.is_established          # no print context accepted: the SCU aborts
    assert echoscu(server.port, "EDGEBOX").returncode == 0   # the box itself answers


def test_the_running_appliance_answers_to_a_printer_title(appliance):
    proc, port, _ = appliance({"printers": PRINTERS})
    assert echoscu(port, "DRYVIEW").returncode == 0
    refused = echoscu(port, "STRANGER")
    assert "Called AE Title Not Recognized" in refused.stderr
