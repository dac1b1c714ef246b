"""The first administrator password needs the one-time setup code the appliance logs and shows
on its front panel: without it the first visitor gets 403, with it the setup is done and
logged, and the code is no longer valid afterwards."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from appliance.web.setup_code import ALPHABET, LENGTH
from tests.conftest import free_port
from tests.web.conftest import PASSWORD, page_csrf, read_setup_code


def test_setup_needs_the_code_that_is_logged_and_kept_for_root(appliance, tmp_path):
    port = free_port()
    proc, _, _ = appliance({"web": {"port": port}})
    code_file = tmp_path / "data" / "web" / "setup-code"
    code = read_setup_code(tmp_path / "data")
    assert len(code) == LENGTH and set(code) <= set(ALPHABET)
    assert oct(code_file.stat().st_mode & 0o777) == "0o600"
    assert re.search(rf"WARNING .*web setup code: {code}$", proc.log(), re.M)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as stranger:
        missing = stranger.post("/api/v1/setup", json={"password": PASSWORD})
        assert missing.status_code == 403 and "setup code" in missing.json()["detail"]
        wrong = stranger.post("/api/v1/setup", json={"password": PASSWORD,
                                                     "setup_code": "AAAAAAAA"})
        assert wrong.status_code == 403
    assert "first password refused from 127.0.0.1: wrong or missing setup code" in proc.log()
    with httpx.Client(base_url=base, timeout=10) as technician:
        # Typed as read off the panel: case and dashes do not matter.
        typed = f"{code[:4].lower()}-{code[4:]}"
        done = technician.post("/api/v1/setup", json={"password": PASSWORD,
                                                      "setup_code": typed})
        assert done.status_code == 200, done.text
        assert technician.get("/api/v1/config").status_code == 200
    assert "administrator password set through the API by 127.0.0.1" in proc.log()
    assert not code_file.exists()
    again = httpx.post(base + "/api/v1/setup", json={"password": "another password",
                                                     "setup_code": code}, timeout=10)
    assert again.status_code == 409
    assert httpx.post(base + "/api/v1/login", json={"password": PASSWORD},
                      timeout=10).status_code == 200


def test_the_setup_form_needs_the_code(web):
    setup = web()
    client = setup.client
    page = client.get("/setup")
    assert 'name="setup_code"' in page.text and "web setup code" in page.text
    form = {"password": PASSWORD, "password_again": PASSWORD, "csrf_token": page_csrf(page.text)}
    refused = client.post("/setup", data=form, follow_redirects=False)
    assert refused.status_code == 403 and "setup code" in refused.text
    assert not setup.context.passwords.is_set()
    done = client.post("/setup", data={**form, "setup_code": setup.setup_code()},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert setup.context.passwords.is_set()
    assert not (setup.data_dir / "web" / "setup-code").exists()


def test_wrong_codes_count_against_the_login_limit(web):
    setup = web()
    code = setup.setup_code()
    for n in range(5):
        answer = setup.client.post("/api/v1/setup", json={"password": PASSWORD,
                                                          "setup_code": f"WRONG{n:03d}"})
        assert answer.status_code == 403
    locked = setup.client.post("/api/v1/setup", json={"password": PASSWORD,
                                                      "setup_code": code})
    assert locked.status_code == 429 and "retry-after" in locked.headers
    assert not setup.context.passwords.is_set()


def test_a_factory_reset_makes_a_new_code(logged_in):
    setup, token = logged_in
    assert not (setup.data_dir / "web" / "setup-code").exists()
    setup.client.post("/api/v1/factory-reset", headers={"X-CSRF-Token": token},
                      json={"confirm": "reset"})
    new = setup.setup_code()
    assert {"topic": "web_setup", "code": new} in [{"topic": e.topic, **e.data}
                                                   for e in setup.events]
    assert setup.new_client().post("/api/v1/setup", json={
        "password": PASSWORD, "setup_code": new}).status_code == 200


def test_appliance_passwd_ends_the_code(web):
    setup = web()
    code_file = setup.data_dir / "web" / "setup-code"
    code = setup.setup_code()
    done = subprocess.run([sys.executable, "-m", "appliance", "passwd", "--stdin", "--config",
                           str(setup.config_path)], input="console password\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not code_file.exists()
    assert not setup.context.setup_code.matches(code)
