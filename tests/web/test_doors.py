"""The web page says which doors are open: the dashboard's Access card and GET /api/v1/access
list each listening service with where it listens, who may come in and the key that closes it;
a public status page does not tell strangers who is let in; the shipped example configurations
leave no door open."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config.access import doors
from appliance.config.loader import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def by_name(rows) -> dict:
    return {(r["name"] if isinstance(r, dict) else r.name): r for r in rows}


def test_defaults_say_which_doors_anyone_may_use(logged_in):
    setup, _ = logged_in
    answer = setup.client.get("/api/v1/access")
    assert answer.status_code == 200, answer.text
    rows = by_name(answer.json())
    association = rows["DICOM associations (and C-ECHO)"]
    assert association["open"] and association["enabled"]
    assert association["guard"] == "any calling AE title; called AE title must be EDGEBOX"
    assert association["listens"] == "DICOM port 11112 on 0.0.0.0"
    assert rows["Storage (C-STORE)"]["open"]
    assert rows["Modality Worklist (C-FIND)"]["open"]
    assert rows["Modality Worklist (C-FIND)"]["setting"] == "worklist.allowed_calling_aets"
    hl7 = rows["HL7 orders (MLLP)"]
    assert (hl7["enabled"], hl7["open"], hl7["listens"]) == (False, False, "off")
    web = rows["Web page and API"]
    assert not web["open"]
    assert "login needed" in web["guard"] and "X-Forwarded-For ignored" in web["guard"]

    page = setup.client.get("/").text
    card = re.search(r'<section class="card" id="access">(.*?)</section>', page, re.S)
    assert card, "no Access card on the dashboard"
    assert "Storage (C-STORE)" in card.group(1)
    assert card.group(1).count(">open<") == 4  # association, storage, worklist, print


def test_each_guard_in_the_configuration_is_shown(web):
    setup = web('[dicom]\nallowed_calling_aets = ["CT3", "WS1"]\nstrict_called_aet = false\n'
                '[storage]\nallowed_calling_aets = ["CT3"]\n'
                '[worklist]\nallowed_calling_aets = ["CT3"]\n'
                '[worklist.hl7]\nenabled = true\nport = 2600\nallowed_hosts = ["10.1.2.40"]\n'
                '[print]\nenabled = false\n'
                '[web]\npublic_status = true\ntrusted_proxies = ["10.0.0.5"]\n')
    setup.setup_password()
    rows = by_name(setup.client.get("/api/v1/access").json())
    assert rows["DICOM associations (and C-ECHO)"]["guard"] == (
        "calling AE titles CT3, WS1; any called AE title")
    assert rows["Storage (C-STORE)"]["guard"] == "calling AE titles CT3"
    assert rows["Modality Worklist (C-FIND)"]["guard"] == "calling AE titles CT3"
    assert rows["Print Management"]["listens"] == "off"
    hl7 = rows["HL7 orders (MLLP)"]
    assert hl7["listens"] == "TCP port 2600 on 0.0.0.0" and not hl7["open"]
    assert hl7["guard"].startswith("hosts 10.1.2.40; at most 32 connections, 4 per host")
    web_row = rows["Web page and API"]
    assert web_row["open"] and "status page public" in web_row["guard"]
    assert "X-Forwarded-For trusted from 10.0.0.5" in web_row["guard"]
    assert [r for r in rows.values() if r["open"]] == [web_row]

    # A stranger may read the public status page, not who is let in.
    stranger = setup.new_client()
    page = stranger.get("/")
    assert page.status_code == 200
    assert "log in to see who may use each service" in page.text
    assert "CT3" not in page.text and "10.1.2.40" not in page.text
    assert stranger.get("/api/v1/access").status_code == 401
    assert "access" not in stranger.get("/api/v1/status").json()


def test_the_page_follows_a_configuration_change(logged_in):
    setup, csrf = logged_in
    rows = by_name(setup.client.get("/api/v1/access").json())
    assert rows["Storage (C-STORE)"]["open"]
    answer = setup.client.patch("/api/v1/config", headers={"X-CSRF-Token": csrf},
                                json={"changes": {"storage.allowed_calling_aets": ["CT3"]}})
    assert answer.status_code == 200, answer.text
    setup.wait(lambda: not by_name(setup.client.get("/api/v1/access").json())
               ["Storage (C-STORE)"]["open"])


@pytest.mark.parametrize("name", ["ct-room.toml", "printer-bridge.toml"])
def test_the_shipped_examples_leave_no_door_open(name):
    rows = doors(load_file(EXAMPLES / name))
    assert [r.name for r in rows if r.open] == []
    enabled = {r.name for r in rows if r.enabled}
    assert {"DICOM associations (and C-ECHO)", "Storage (C-STORE)",
            "Modality Worklist (C-FIND)", "Web page and API"} <= enabled
    if name == "ct-room.toml":
        assert "HL7 orders (MLLP)" in enabled  # fed by the RIS, from its one host only
