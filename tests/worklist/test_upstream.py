"""The upstream MWL proxy against DCMTK wlmscpfs as the RIS, inside a running appliance: the
cache fills, follows the RIS, keeps answering while the RIS is down, and the status line says
how old it is."""

from __future__ import annotations

import time
from datetime import date

import pytest

from appliance.config.schema import ApplianceConfig
from appliance.worklist.scp import WorklistService
from appliance.worklist.upstream import UpstreamProxy
from tests.conftest import free_port
from tests.worklist.conftest import findscu, item


def ris_items(count: int) -> list[dict]:
    today = f"{date.today():%Y%m%d}"
    return [item(f"R{n}", f"RIS^PATIENT{n}", f"RACC{n}", "CT", "CT1", today, f"{9 + n:02d}0000",
                 study=f"1.2.3.9{n}", sps_id=f"RS{n}") for n in range(count)]


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def answers(port) -> list[str]:
    return sorted(str(a.AccessionNumber) for a in findscu(port, "AccessionNumber").answers)


def test_cache_follows_the_ris_and_answers_while_it_is_down(appliance, wlmscpfs):
    ris_port, stop_ris = wlmscpfs(ris_items(3))
    proc, port, _ = appliance({
        "peers": [{"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": ris_port}],
        "worklist": {"upstream": {"enabled": True, "peer": "ris", "interval": 0.5,
                                  "timeout": 5.0}}})
    wait_for(lambda: answers(port) == ["RACC0", "RACC1", "RACC2"])
    proc.notify.wait_for(lambda m: "worklist-upstream: upstream ris: 3 items, cache" in m)

    stop_ris()
    proc.notify.wait_for(lambda m: "upstream ris unreachable" in m and "serving cache" in m
                         and "s old" in m)
    assert answers(port) == ["RACC0", "RACC1", "RACC2"]  # still answering from the cache
    first = findscu(port, "AccessionNumber=RACC1", "PatientName",
                    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime")
    assert first.answers[0].PatientName == "RIS^PATIENT1"
    assert first.answers[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime \
        == "100000"

    # the RIS comes back with one order fewer and one new: the cache follows
    items = ris_items(4)
    wlmscpfs([items[0], items[2], items[3]], port=ris_port)
    wait_for(lambda: answers(port) == ["RACC0", "RACC2", "RACC3"])
    assert "upstream ris reachable again" in proc.log()


def test_status_reports_cache_age_when_the_ris_never_answered(tmp_path):
    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "peers": [{"name": "ris", "ae_title": "RIS", "host": "127.0.0.1",
                   "port": free_port()}],
        "worklist": {"upstream": {"enabled": True, "peer": "ris", "timeout": 2.0}}})
    proxy = UpstreamProxy(config, WorklistService(config))
    assert proxy.poll() is False
    assert proxy.status().startswith("upstream ris unreachable (cannot associate with "
                                     "RIS@127.0.0.1:")
    assert proxy.status().endswith("serving cache empty, never refreshed")


def test_upstream_query_asks_for_today_and_the_days_ahead():
    from appliance.worklist.upstream import upstream_query

    query = upstream_query(2, "MR", today=date(2026, 3, 30))
    step = query.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepStartDate == "20260330-20260401"
    assert step.Modality == "MR"
    assert "PatientName" in query and "AccessionNumber" in query


def test_the_upstream_worklist_is_fetched_over_tls(pki, worklist_server):
    from appliance.dicom.config import DicomTlsConfig
    from appliance.worklist.upstream import UpstreamError, fetch, upstream_query

    pki_tls = {"certificate": str(pki / "box.pem"), "private_key": str(pki / "box.key"),
               "ca_certificates": str(pki / "ca.pem")}
    port, _ = worklist_server(items=ris_items(2),
                              dicom={"tls": {"enabled": True, "port": free_port(), **pki_tls}})
    modality = DicomTlsConfig(certificate=str(pki / "modality.pem"),
                              private_key=str(pki / "modality.key"),
                              ca_certificates=str(pki / "ca.pem"))
    found = fetch("127.0.0.1", port, "EDGEBOX", "CT1", upstream_query(30, ""), 10.0, modality)
    assert sorted(str(item.AccessionNumber) for item in found) == ["RACC0", "RACC1"]
    with pytest.raises(UpstreamError):  # the same port without TLS
        fetch("127.0.0.1", port, "EDGEBOX", "CT1", upstream_query(30, ""), 3.0)
