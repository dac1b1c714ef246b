"""A real browser (Debian's headless Chromium through selenium and Debian's chromedriver):
set the first password, log out and in, change the AE title in the form, and DCMTK's echoscu
reaches the appliance under the new title. Saves a screenshot of the dashboard to
build/test-artifacts/web/dashboard.png."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, echoscu, free_port
from tests.web.conftest import read_setup_code

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = REPO / "build" / "test-artifacts" / "web"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (make installs them)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Never let the browser reach the internet: no sync, updates, or background traffic.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def fill(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def submit(driver, css: str) -> None:
    """Click a submit button and wait until the answer page has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(page))


def test_first_password_login_ae_title_change_then_echoscu(appliance, browser, tmp_path):
    from selenium.webdriver.common.by import By

    web_port = free_port()
    _, dicom_port, _ = appliance({"web": {"port": web_port}})
    base = f"http://127.0.0.1:{web_port}"
    password = "browser password 1"

    browser.get(base + "/")
    assert browser.current_url == base + "/setup"
    fill(browser, "setup_code", read_setup_code(tmp_path / "data"))
    fill(browser, "password", password)
    fill(browser, "password_again", password)
    submit(browser, "form[action='/setup'] button")
    assert browser.current_url == base + "/"

    submit(browser, "form[action='/logout'] button")
    assert browser.current_url.startswith(base + "/login")
    fill(browser, "password", "not the password")
    submit(browser, "form[action='/login'] button")
    assert "wrong password" in browser.find_element(By.CSS_SELECTOR, ".error").text
    fill(browser, "password", password)
    submit(browser, "form[action='/login'] button")
    assert browser.current_url == base + "/"

    browser.get(base + "/config/dicom")
    fill(browser, "dicom-ae_title", "A" * 17)
    submit(browser, "#form-dicom button")
    error = browser.find_element(By.ID, "error-dicom.ae_title").text
    assert error == "AE title must be at most 16 characters, got 17"
    fill(browser, "dicom-ae_title", "BROWSERAE")
    submit(browser, "#form-dicom button")
    assert "saved and applied: dicom.ae_title" in browser.find_element(By.CSS_SELECTOR,
                                                                        ".flash").text

    deadline = time.monotonic() + 15
    while echoscu(dicom_port, called="BROWSERAE").returncode != 0:
        assert time.monotonic() < deadline, "echoscu never succeeded with the new AE title"
        time.sleep(0.2)
    assert echoscu(dicom_port, called="EDGEBOX").returncode != 0  # the old title is gone

    browser.get(base + "/")
    assert browser.find_element(By.ID, "ae-title").text == "BROWSERAE"
    browser.get(base + "/associations")
    assert "ECHOSCU → BROWSERAE" in browser.find_element(By.ID, "association-history").text
    browser.get(base + "/")
    browser.set_window_size(1280, 1800)  # the whole dashboard in one picture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    shutil.copy(shot, ARTIFACTS / "dashboard.png")
