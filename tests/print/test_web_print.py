"""The print jobs page over the real spool: a job printed through the Print SCP is listed with
its film preview, reprint queues a new job that prints, and the print job metric counts it."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image
from pynetdicom.sop_class import Printer

from appliance.core.providers import Providers
from appliance.web.print_provider import SpoolPrintProvider
from tests.print.conftest import boxes_of
from tests.web.conftest import page_csrf, web  # noqa: F401 - the web fixture

GRADIENT = np.tile(np.arange(256, dtype=np.uint8), (64, 1))


def print_job(server, scu, client=None) -> str:
    client = client or scu(server.port)
    client.session(NumberOfCopies="2")
    _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN")
    client.set_image(boxes_of(reply)[0], 1, GRADIENT)
    _, action = client.action()
    uid = str(action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID)
    assert server.spool.wait_job(uid)["status"] == "DONE"
    return uid


def web_over_spool(web, print_server):  # noqa: F811
    providers = Providers()
    setup = web(providers=providers)
    server = print_server(bus=setup.bus, printers=[{"name": "laser", "driver": "sim",
                                                    "dpi": 100}])
    providers.printing = SpoolPrintProvider(server.spool)
    setup.setup_password()
    return setup, server


def test_print_page_lists_a_real_job_with_its_preview_and_reprints_it(web, print_server,  # noqa: F811
                                                                      scu):
    setup, server = web_over_spool(web, print_server)
    uid = print_job(server, scu)
    page = setup.client.get("/print")
    assert page.status_code == 200
    assert uid in page.text and "laser" in page.text and "from PRINTSCU, 2 copies" in page.text
    assert re.search(r"<td>laser</td><td>8INX10IN</td><td>1</td><td>done", page.text), page.text
    number = server.spool.job(uid)["number"]
    assert number >= 1 and f'<td title="{uid}">#{number}</td>' in page.text  # not the long UID
    preview = setup.client.get(f"/print/{uid}/preview.png")
    assert preview.headers["content-type"] == "image/png"
    from io import BytesIO
    image = Image.open(BytesIO(preview.content))
    assert max(image.size) == server.config.print.preview_px    # the film, made small
    assert image.size[0] < image.size[1]                         # 8x10 portrait
    api = setup.client.get("/api/v1/print/jobs").json()
    assert api[0]["id"] == uid and api[0]["state"] == "done"

    answer = setup.client.post(f"/print/{uid}/reprint", data={"csrf_token": page_csrf(page.text)})
    assert answer.status_code in (200, 303)
    jobs = server.spool.jobs()
    assert len(jobs) == 2
    again = next(j for j in jobs if j["uid"] != uid)
    assert server.spool.wait_job(again["uid"])["status"] == "DONE"
    assert again["copies"] == 2 and again["calling_aet"] == "PRINTSCU"
    assert again["number"] == number + 1 and again["film_size"] == "8INX10IN"
    assert f'<td title="{again["uid"]}">#{number + 1}</td>' in setup.client.get("/print").text
    printed = server.spool.printers["laser"].printed
    assert len(printed) == 4     # two copies of the film, twice
    assert np.array_equal(np.asarray(printed[0].image), np.asarray(printed[-1].image))


def test_reprint_of_an_unknown_job_is_a_clear_404(web, print_server):  # noqa: F811
    setup, server = web_over_spool(web, print_server)
    page = setup.client.get("/print")
    answer = setup.client.post("/api/v1/print/jobs/1.2.3/reprint",
                               headers={"X-CSRF-Token": page_csrf(page.text)})
    assert answer.status_code == 404 and "no print job '1.2.3'" in answer.text


def test_print_job_events_and_metric(web, print_server, scu):  # noqa: F811
    setup, server = web_over_spool(web, print_server)
    client = scu(server.port)
    uid = print_job(server, scu, client)
    states = [e.data["state"] for e in setup.events
              if e.topic == "print_job" and e.data.get("job") == uid]
    assert states == ["pending", "printing", "done"]
    setup.wait(lambda: 'appliance_print_jobs_total{state="done"} 1.0'
               in setup.client.get("/metrics").text)
    server.spool.printers["laser"].set_condition("FILM JAM")
    setup.wait(lambda: any(e.topic == "printer" and e.data == {
        "name": "laser", "state": "failure", "info": "FILM JAM", "detail": ""}
        for e in setup.events))
    # Let the Printer N-EVENT-REPORT (3: failure) reach the SCU before the fixture releases:
    # an SCU that answers a report after sending A-RELEASE-RQ upsets pynetdicom's requestor.
    client.wait_event(Printer, 3)
