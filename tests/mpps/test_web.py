"""MPPS on the web page, the JSON API and /metrics (issue 16): the procedure steps a modality
sent (pynetdicom, through the native engine) are counted by status and listed on the worklist
page, and the requests waiting for the RIS are counted per peer."""

from __future__ import annotations

import re

from pydicom.uid import generate_uid

from appliance.core.providers import Providers
from appliance.mpps.web_provider import MppsWebProvider
from appliance.worklist.web_provider import WorklistWebProvider
from tests.conftest import free_port
from tests.mpps.conftest import MPPS, final, in_progress, scheduled_step
from tests.web.conftest import web  # noqa: F401,F811  (the web page fixture)

RIS = {"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": free_port()}


def _metric(text: str, name: str, label: str) -> float:
    match = re.search(rf'^{name}\{{\w+="{re.escape(label)}"\}} (\S+)$', text, re.M)
    assert match, f"{name}{{{label}}} not in /metrics"
    return float(match.group(1))


def test_procedure_steps_are_shown_counted_and_scraped(mpps_server, modality, web):  # noqa: F811
    # the RIS is down (nothing listens) and no forwarder runs: the requests stay queued
    server, worklist, service = mpps_server({"forward_to": ["ris"]}, peers=[RIS])
    assoc = modality(server.port)
    finished, running, unscheduled = generate_uid(), generate_uid(), generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, finished)[0].Status == 0x0000
    assert assoc.send_n_set(final(), MPPS, finished)[0].Status == 0x0000
    assert assoc.send_n_create(in_progress(scheduled_step(study="1.2.3.2", accession="A1002",
                                                          rp_id="RP2", sps_id="S2"),
                                           PatientName="ROE^JANE", PatientID="1002"),
                               MPPS, running)[0].Status == 0x0000
    assert assoc.send_n_create(in_progress(scheduled_step(study="9.9.9", accession="X9",
                                                          rp_id="", sps_id=""),
                                           PatientName="NOBODY^KNOWN", PatientID="9"),
                               MPPS, unscheduled)[0].Status == 0x0000
    assoc.release()

    setup = web(providers=Providers(worklist=WorklistWebProvider(worklist),
                                    mpps=MppsWebProvider(service)))
    setup.setup_password()

    page = setup.client.get("/worklist")
    assert page.status_code == 200, page.text
    assert "IN PROGRESS: 2, COMPLETED: 1, DISCONTINUED: 0; waiting for ris: 4" in page.text
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>CT</td>\s*"
                      r"<td>CT1</td><td>(\w+)</td><td>[^<]+</td><td>[^<]+</td><td>([^<]+)</td>",
                      page.text)
    assert sorted(rows) == sorted([
        ("DOE^JOHN", "1001", "A1001", "scheduled", "COMPLETED"),
        ("ROE^JANE", "1002", "A1002", "scheduled", "IN PROGRESS"),
        ("NOBODY^KNOWN", "9", "X9", "unscheduled", "IN PROGRESS")])

    # the landing page's worklist card: the item the completed step names was completed today
    assert 'id="worklist-completed-today">1<' in setup.client.get("/").text

    api = setup.client.get("/api/v1/mpps", params={"limit": 2})
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["counts"] == {"IN PROGRESS": 2, "COMPLETED": 1, "DISCONTINUED": 0}
    assert body["forward_pending"] == {"ris": 4}
    assert [step["uid"] for step in body["steps"]] == [unscheduled, running]
    assert setup.client.get("/api/v1/mpps", params={"limit": 0}).status_code == 422

    metrics = setup.client.get("/metrics").text
    assert _metric(metrics, "appliance_mpps_steps", "IN PROGRESS") == 2
    assert _metric(metrics, "appliance_mpps_steps", "COMPLETED") == 1
    assert _metric(metrics, "appliance_mpps_steps", "DISCONTINUED") == 0
    assert _metric(metrics, "appliance_mpps_forward_pending", "ris") == 4


def test_no_mpps_provider_no_mpps_section(web):  # noqa: F811
    setup = web(providers=Providers())
    setup.setup_password()
    assert setup.client.get("/api/v1/mpps").status_code == 404
    assert "appliance_mpps" not in setup.client.get("/metrics").text
