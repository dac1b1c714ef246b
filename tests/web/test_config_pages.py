"""Configuration from the web page and the API: forms generated from the schema, inline
refusals, all-or-nothing writes applied live, peers with a working "Test" button."""

from __future__ import annotations

import tomllib

import pytest

from appliance.config.loader import load_file
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError
from tests.conftest import free_port
from tests.web.conftest import errors_in, page_csrf


def submit(setup, section: str, form: str, **fields):
    page = setup.client.get(f"/config/{section}")
    assert page.status_code == 200
    return setup.client.post(f"/config/{section}", data={
        "csrf_token": page_csrf(page.text), "form": form, **fields}, follow_redirects=False)


def test_every_section_of_the_schema_has_a_form_with_its_descriptions(logged_in):
    setup, _ = logged_in
    for section in ApplianceConfig.model_fields:
        page = setup.client.get(f"/config/{section}")
        assert page.status_code == 200, section
    dicom = setup.client.get("/config/dicom").text
    assert 'name="ae_title" value="EDGEBOX"' in dicom
    assert "Our AE title (called AE title)" in dicom  # the Field description
    assert 'type="checkbox" id="dicom-strict_called_aet"' in dicom
    # labels in words from the schema's titles, the unit, and the file's key beside them
    assert ('>Largest PDU <span class="unit">(bytes)</span> <code class="key">max_pdu</code>'
            '</label>') in dicom
    assert ('>Check the called AE title <code class="key">strict_called_aet</code></label>'
            in dicom)
    assert '>Association timeout <span class="unit">(seconds)</span>' in dicom
    assert '<h1>Configuration: DICOM</h1>' in dicom and '>Storage Commitment</a>' in dicom
    assert '<h2>DICOM over TLS</h2>' in dicom  # a nested table titled too
    hal = setup.client.get("/config/hal").text
    assert 'action="/config/hal"' in hal and 'value="hal.leds"' in hal  # nested sections
    assert '<option value="sim" selected>' in hal
    console = setup.client.get("/config/console").text
    assert 'type="password" id="console-pin"' in console


def test_changing_the_ae_title_writes_the_file_and_reloads_live(logged_in):
    setup, _ = logged_in
    answer = submit(setup, "dicom", "dicom", ae_title="NEWTITLE", port="11112")
    assert answer.status_code == 303
    assert load_file(setup.config_path).dicom.ae_title == "NEWTITLE"
    # Only the changed key is written; the supervisor re-read the file (live reload).
    assert "port" not in tomllib.loads(setup.config_path.read_text())["dicom"]
    setup.wait(lambda: setup.supervisor.config.dicom.ae_title == "NEWTITLE")
    assert "saved and applied: dicom.ae_title" in setup.client.get("/config/dicom").text


@pytest.mark.parametrize("field,value,message", [
    ("ae_title", "A" * 17, "AE title must be at most 16 characters, got 17"),
    ("port", "70000", "port must be between 1 and 65535, got 70000"),
    ("port", "eleven", "expected an integer, got 'eleven'"),
    ("acse_timeout", "0", "must be more than 0 and at most 3600 seconds"),
    ("allowed_calling_aets", "CT1,BAD\\AE", "AE title must not contain a backslash"),
])
def test_bad_values_are_refused_inline_and_nothing_is_written(logged_in, field, value,
                                                                message):
    setup, _ = logged_in
    before = setup.config_path.read_text()
    answer = submit(setup, "dicom", "dicom", **{field: value})
    assert answer.status_code == 400
    assert any(message in e.replace("&#39;", "'") for e in errors_in(answer.text)), \
        errors_in(answer.text)
    assert f'id="error-dicom.{field}"' in answer.text  # next to its input
    assert f'value="{value}"' in answer.text.replace("&#39;", "'").replace("\\\\", "\\") \
        or field == "allowed_calling_aets"
    assert setup.config_path.read_text() == before


def test_a_form_with_two_changes_is_written_whole_or_not_at_all(logged_in):
    setup, _ = logged_in
    before = setup.config_path.read_text()
    # mode=static needs an address and netmask: the pair is checked together.
    refused = submit(setup, "network", "network", mode="static", address="192.168.1.20")
    assert refused.status_code == 400
    assert "needs network.address and network.netmask" in refused.text
    assert setup.config_path.read_text() == before
    accepted = submit(setup, "network", "network", mode="static", address="192.168.1.20",
                      netmask="255.255.255.0")
    assert accepted.status_code == 303
    network = load_file(setup.config_path).network
    assert (network.mode, network.address, network.netmask) == \
        ("static", "192.168.1.20", "255.255.255.0")


def test_checkbox_and_nested_section(logged_in):
    setup, _ = logged_in
    answer = submit(setup, "hal", "hal.leds", enabled=["false"], identify_seconds="5")
    assert answer.status_code == 303
    leds = load_file(setup.config_path).hal.leds
    assert leds.enabled is False and leds.identify_seconds == 5.0


def test_api_patch_validates_and_applies(logged_in):
    setup, token = logged_in
    headers = {"X-CSRF-Token": token}
    too_long = setup.client.patch("/api/v1/config", headers=headers,
                                  json={"changes": {"dicom.ae_title": "X" * 17}})
    assert too_long.status_code == 422
    assert too_long.json()["problems"] == [{"key": "dicom.ae_title", "reason":
                                            "AE title must be at most 16 characters, got 17"}]
    out_of_range = setup.client.patch("/api/v1/config", headers=headers,
                                      json={"changes": {"dicom.port": 70000,
                                                        "dicom.ae_title": "OK"}})
    assert out_of_range.status_code == 422
    assert out_of_range.json()["problems"][0]["key"] == "dicom.port"
    unknown = setup.client.patch("/api/v1/config", headers=headers,
                                 json={"changes": {"dicom.colour": "red"}})
    assert unknown.status_code == 422 and "unknown key 'colour'" in unknown.text
    assert "dicom" not in setup.config_path.read_text()
    ok = setup.client.patch("/api/v1/config", headers=headers,
                            json={"changes": {"dicom.port": 104, "dicom.ae_title": "API"}})
    assert ok.status_code == 200 and ok.json()["dicom"]["port"] == 104
    assert setup.client.get("/api/v1/config").json()["dicom"]["ae_title"] == "API"
    setup.wait(lambda: setup.supervisor.config.dicom.port == 104)


def add_peer(setup, **fields):
    page = setup.client.get("/config/peers")
    return setup.client.post("/config/peers/add", data={"csrf_token": page_csrf(page.text),
                                                        **fields}, follow_redirects=False)


def test_peers_add_test_and_remove(logged_in, storescp):
    setup, token = logged_in
    port = storescp("DCMTKSCP")
    assert add_peer(setup, name="pacs", ae_title="DCMTKSCP", host="127.0.0.1",
                    port=str(port)).status_code == 303
    closed = free_port()
    assert add_peer(setup, name="gone", ae_title="NOBODY", host="127.0.0.1",
                    port=str(closed)).status_code == 303
    assert [p.name for p in load_file(setup.config_path).peers] == ["pacs", "gone"]

    page = setup.client.get("/config/peers")
    result = setup.client.post("/peers/pacs/test", data={"csrf_token": page_csrf(page.text)})
    assert result.status_code == 200
    assert "C-ECHO DCMTKSCP@127.0.0.1" in result.text and "success, round trip" in result.text
    failed = setup.client.post("/peers/gone/test", data={"csrf_token": page_csrf(page.text)})
    assert "failed: connection refused" in failed.text

    api = setup.client.post("/api/v1/peers/pacs/echo", headers={"X-CSRF-Token": token})
    assert api.json()["ok"] is True and api.json()["round_trip_ms"] > 0
    missing = setup.client.post("/api/v1/peers/nobody/echo", headers={"X-CSRF-Token": token})
    assert missing.status_code == 404

    page = setup.client.get("/config/peers")
    removed = setup.client.post("/config/peers/1/delete",
                                data={"csrf_token": page_csrf(page.text)},
                                follow_redirects=False)
    assert removed.status_code == 303
    assert [p.name for p in load_file(setup.config_path).peers] == ["pacs"]


def test_adding_a_bad_peer_is_refused_inline(logged_in):
    setup, _ = logged_in
    answer = add_peer(setup, name="pacs", ae_title="P" * 17, host="127.0.0.1", port="0")
    assert answer.status_code == 400
    errors = " ".join(errors_in(answer.text))
    assert "AE title must be at most 16 characters" in errors
    assert "port must be between 1 and 65535, got 0" in errors
    missing = add_peer(setup, name="x")
    assert "required" in " ".join(errors_in(missing.text))
    assert "peers" not in setup.config_path.read_text()


@pytest.mark.parametrize("toml,message", [
    ("[web]\nport = 0\n", "web.port: port must be between 1 and 65535, got 0"),
    ("[web]\nsession_minutes = 0\n", "web.session_minutes: must be between 1 and 1440"),
    ("[web]\nlogin_attempts = 1000\n", "web.login_attempts: must be between 1 and 100"),
    ("[web]\nhttps = \"yes\"\n", "web.https: expected true or false"),
    ("[web]\npublic_status = 1\n", "web.public_status: expected true or false"),
    ("[web]\necho_timeout = 0\n", "web.echo_timeout: must be more than 0"),
    ("[web]\nbind = \"localhost\"\n", "web.bind: must be an IPv4 or IPv6 address"),
    ("[web]\nport_number = 8080\n", "web.port_number: unknown key"),
])
def test_web_keys_are_refused_with_file_key_and_reason(tmp_path, toml, message):
    path = tmp_path / "appliance.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_file(path)
    assert f"{path}: {message}" in refused.value.problems[0]


def test_a_value_with_several_problems_shows_each_next_to_its_input(logged_in):
    setup, _ = logged_in
    answer = submit(setup, "dicom", "dicom", ae_title="A" * 17 + "\\")
    assert answer.status_code == 400
    assert errors_in(answer.text) == ["AE title must not contain a backslash",
                                      "AE title must be at most 16 characters, got 18"]
    assert 'aria-describedby="help-dicom-ae_title error-dicom.ae_title"' in answer.text
    assert load_file(setup.config_path).dicom.ae_title == "EDGEBOX"


def test_the_api_gives_every_key_in_words(logged_in):
    setup, _ = logged_in
    labels = setup.client.get("/api/v1/config/labels").json()
    assert labels["dicom.acse_timeout"] == {"title": "Association timeout", "unit": "seconds",
                                            "help": "Seconds to wait for association messages"}
    assert labels["peers[].port"]["title"] == "Port"
    schema = setup.client.get("/api/v1/config/schema").json()
    reserve = schema["$defs"]["StorageConfig"]["properties"]["reserve_mb"]
    assert (reserve["title"], reserve["unit"]) == ("Reserved free space", "MB")


def test_a_dicomweb_peer_is_tested_with_qido_rs_over_https(logged_in, tmp_path, storescp):
    """The peer's button says what it sends: "Test (QIDO-RS)" for a DICOMweb peer (checked
    against a real HTTPS server with a private CA), "Test (C-ECHO)" for a DICOM peer."""
    from tests.forward.https_stow import HttpsDicomWeb

    setup, _ = logged_in
    server = HttpsDicomWeb(tmp_path / "https")
    try:
        # The add form offers the certificate check ticked (the default); a browser sends it.
        assert 'type="checkbox" id="add-tls_verify" name="tls_verify" value="true" checked' \
            in setup.client.get("/config/peers").text
        assert add_peer(setup, name="vna", protocol="dicomweb", url=server.url,
                        tls_verify="true", ca_certificates=str(server.ca)).status_code == 303
        assert add_peer(setup, name="strict", protocol="dicomweb", url=server.url,
                        tls_verify="true").status_code == 303
        assert add_peer(setup, name="pacs", ae_title="DCMTKSCP", host="127.0.0.1",
                        port=str(storescp("DCMTKSCP"))).status_code == 303
        page = setup.client.get("/config/peers")
        assert '<button type="submit" id="test-vna">Test (QIDO-RS)</button>' in page.text
        assert '<button type="submit" id="test-strict">Test (QIDO-RS)</button>' in page.text
        assert '<button type="submit" id="test-pacs">Test (C-ECHO)</button>' in page.text
        assert page.text.count("Test (QIDO-RS)") == 2 and page.text.count("Test (C-ECHO)") == 1

        csrf = {"csrf_token": page_csrf(page.text)}
        answered = server.requests
        result = setup.client.post("/peers/vna/test", data=csrf)
        assert result.status_code == 200
        assert f"QIDO-RS vna ({server.url}): success, round trip" in result.text
        assert 'class="ok" role="status" id="echo-result"' in result.text
        assert server.requests == answered + 1  # the query reached the server
        refused = setup.client.post("/peers/strict/test", data=csrf)
        assert f"QIDO-RS strict ({server.url}): failed: TLS: the server&#39;s certificate " \
               "could not be verified" in refused.text
        assert 'class="error" role="status" id="echo-result"' in refused.text
        assert server.requests == answered + 1
        echoed = setup.client.post("/peers/pacs/test", data=csrf)
        assert "C-ECHO DCMTKSCP@127.0.0.1" in echoed.text and "success" in echoed.text
    finally:
        server.close()
