"""The associations history: 500 associations reported the way the native engine reports them
(AssociationLog.engine_event, which publishes the `association` event), kept in the database,
newest first, 50 a page, filtered by calling AE title, outcome, service and time, with the
filters in the URL; the same through GET /api/v1/associations."""

from __future__ import annotations

import re
import time
from datetime import datetime

from appliance.dicom.association_log import AssociationLog
from appliance.web.association_history import AssociationFilter, AssociationHistory

CALLERS = ("CT1", "MR2", "US3", "WS4")


def report(bus, count: int) -> None:
    engine = AssociationLog(bus)
    for n in range(count):
        engine.engine_event({"event": "opened", "peer": f"127.0.0.{n % 200 + 1}"})
        aborted = n % 10 == 0
        engine.engine_event({
            "event": "ended", "peer": f"127.0.0.{n % 200 + 1}",
            "calling_ae": CALLERS[n % 4], "called_ae": "EDGEBOX", "contexts": [],
            "operations": {"C-ECHO": 1} if n % 4 == 3 else {"C-STORE": n % 7 + 1},
            "duration": 0.25, "outcome": "aborted: peer sent A-ABORT" if aborted else "released"})


def rows_of(html: str) -> list[str]:
    body = re.search(r'<table id="association-history">(.*?)</table>', html, re.S).group(1)
    return re.findall(r"<td>(\w+) → EDGEBOX</td>", body)


def test_500_associations_paged_newest_first_and_filtered(logged_in):
    setup, _ = logged_in
    report(setup.bus, 500)
    client = setup.client

    first = client.get("/associations").text
    assert "500 found" in first and "page 1 of 10" in first
    assert rows_of(first)[:4] == ["WS4", "US3", "MR2", "CT1"]  # the 500th (n=499) first
    assert len(rows_of(first)) == 50
    assert '<a rel="next" href="/associations?page=2">' in first
    last = client.get("/associations?page=10").text
    assert rows_of(last)[-1] == "CT1" and "page 10 of 10" in last  # the first one, n=0

    only_ct1 = client.get("/associations", params={"calling_aet": "ct1"}).text
    assert "125 found" in only_ct1 and set(rows_of(only_ct1)) == {"CT1"}
    assert 'href="/associations?calling_aet=ct1&amp;page=2"' in only_ct1  # bookmarkable
    aborted = client.get("/associations?outcome=aborted").text
    assert "50 found" in aborted and "released" not in re.search(
        r'<tbody>(.*)</tbody>', aborted, re.S).group(1)
    echoes = client.get("/associations?service=C-ECHO&outcome=released").text
    assert set(rows_of(echoes)) == {"WS4"} and "125 found" in echoes
    stamp = datetime.fromtimestamp(time.time() + 120).strftime("%Y-%m-%dT%H:%M")
    assert "0 found" in client.get(f"/associations?since={stamp}").text
    assert "500 found" in client.get(f"/associations?until={stamp}").text
    assert client.get("/associations?outcome=maybe").status_code == 400
    assert client.get("/associations?since=yesterday").status_code == 400
    # the status API's recent list is the history's newest 50
    recent = client.get("/api/v1/status").json()["associations"]["recent"]
    assert [r["calling_aet"] for r in recent[:4]] == ["WS4", "US3", "MR2", "CT1"]
    assert len(recent) == 50 and recent[0]["called_aet"] == "EDGEBOX"

    api = client.get("/api/v1/associations", params={"calling_aet": "MR2", "page": 2}).json()
    assert (api["total"], api["page"], api["pages"], api["page_size"]) == (125, 2, 3, 50)
    assert {a["calling_aet"] for a in api["associations"]} == {"MR2"}
    assert api["associations"][0]["ended"] >= api["associations"][-1]["ended"]
    stranger = setup.new_client()
    assert stranger.get("/api/v1/associations").status_code == 401


def test_the_history_is_bounded_by_age_and_by_count(tmp_path, monkeypatch):
    from appliance.core.events import EventBus
    from appliance.store.database import Database
    from appliance.web import association_history

    bus, now = EventBus(), [1_000_000.0]
    history = AssociationHistory(Database(tmp_path / "db.sqlite3"), bus, clock=lambda: now[0])
    history.attach()
    report(bus, 3)
    history.flush()
    now[0] += 31 * 86400  # a month later the old ones are gone
    report(bus, 2)
    assert history.search(AssociationFilter()).total == 2
    monkeypatch.setattr(association_history, "KEEP_ROWS", 4)
    report(bus, 5)
    found = history.search(AssociationFilter())
    assert found.total == 4 and found.rows[0].calling_aet == "CT1"  # the newest four kept
