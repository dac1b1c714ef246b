"""Firmware upload end to end in a real browser: headless Chromium uploads a signed bundle on
the Operations page of a running appliance, the root installer (`appliance update
--request`, as edge-update-request.service runs it) installs it with a real RAUC, and the
page, polling the progress route, reports the new slot and version."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import free_port
from tests.update.rauc_box import Keys, RaucBox, make_bundle, needs_rauc
from tests.web.conftest import read_setup_code
from tests.web.test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, browser, fill, submit

pytestmark = [needs_rauc, pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver (make installs them)")]
__all__ = ["browser"]  # the fixture, shared with test_browser


def test_upload_on_the_page_then_the_install_progress_to_the_end(appliance, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    keys = Keys(tmp_path / "keys")
    box = RaucBox(tmp_path / "box", keys)
    try:
        bundle = make_bundle(keys, tmp_path / "edge-2.7.raucb", "2.7")
        web_port = free_port()
        _, _, config_path = appliance({"web": {"port": web_port}})
        request = tmp_path / "data" / "update" / "request.json"
        base = f"http://127.0.0.1:{web_port}"

        browser.get(base + "/setup")
        fill(browser, "setup_code", read_setup_code(tmp_path / "data"))
        fill(browser, "password", "browser password 1")
        fill(browser, "password_again", "browser password 1")
        submit(browser, "form[action='/setup'] button")
        browser.get(base + "/operations")
        browser.find_element(By.ID, "firmware-file").send_keys(str(bundle))
        browser.find_element(By.CSS_SELECTOR, "#firmware-form button").click()
        message = browser.find_element(By.ID, "firmware-message")
        WebDriverWait(browser, 30).until(lambda _: "waiting for the installer" in message.text)
        assert browser.find_element(By.ID, "firmware-upload-progress") \
            .get_attribute("value") == "100"
        assert request.exists()

        # what edge-update-request.service does when request.json appears
        installer = subprocess.run(
            [sys.executable, "-m", "appliance", "update", "--config", str(config_path),
             "--request"], capture_output=True, text=True, timeout=300,
            env={**os.environ, **box.env})
        assert installer.returncode == 0, installer.stderr

        WebDriverWait(browser, 30).until(lambda _: message.text.startswith("Installed:"))
        assert "installed version 2.7 into slot B" in message.text
        assert browser.find_element(By.ID, "firmware-install-progress") \
            .get_attribute("value") == "100"
        assert box.primary == "B"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "firmware-update.png"))
    finally:
        box.close()
