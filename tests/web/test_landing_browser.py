"""The landing page in a real browser (headless Chromium) at 1366x768: with 500 associations
in the history and 3 destinations with long last errors, the whole page fits the window (no
vertical scroll bar), the verdict line is there and the plots are drawn with their data; the
association history's filter form and pager work in the browser."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from appliance.core.providers import Providers, QueueDestination
from appliance.web.stats import StatsStore
from tests.conftest import free_port
from tests.web.conftest import PASSWORD
from tests.web.test_association_history import report
from tests.web.test_browser import (  # noqa: F401 (browser: the fixture)
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    browser,
    fill,
    submit,
)

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (make installs them)")

ERROR = ("1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678: association "
         "rejected: called AE title not recognised (permanent, service user); check the "
         "destination's AE title in [[peers]]")


class ThreeDestinations:
    def destinations(self):
        return [QueueDestination(name, pending=n * 40, failed=n, oldest_age_seconds=n * 3600.0,
                                 last_error=ERROR) for n, name in enumerate(
                                     ("pacs-main", "pacs-archive", "cloud-stow"), 1)]

    def hold(self, destination): ...
    def release(self, destination): ...
    def retry(self, destination): return 0


def serve(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def test_landing_page_fits_1366x768_with_500_associations_and_3_destinations(web, browser):  # noqa: F811, E501
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    setup = web(providers=Providers(queue=ThreeDestinations()))
    setup.setup_password()
    report(setup.bus, 500)
    # an hour of images received (the buckets the once-a-minute sampler writes)
    minute = int(time.time() // 60)
    StatsStore(setup.context.stats.store.db).put(
        [("received", "", minute - m, float(10 + m % 7)) for m in range(1, 61)])
    server, thread, base = serve(setup.app)
    try:
        browser.set_window_size(1366, 768)
        browser.get(base + "/login")
        fill(browser, "password", PASSWORD)
        submit(browser, "form[action='/login'] button")
        assert browser.current_url == base + "/"
        verdict = browser.find_element(By.ID, "verdict").text
        assert verdict.split(":")[0].split()[0] in ("Healthy", "Starting", "Degraded",
                                                     "Failing")
        assert "pacs-archive" in browser.find_element(By.ID, "card-forwarding").text
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) == 3
        received = charts[0]
        assert "images per minute: up to " in received.get_attribute("aria-label")
        assert int(received.get_attribute("data-points")) > 0
        line = received.find_element(By.TAG_NAME, "polyline")
        box = browser.execute_script("const b = arguments[0].getBBox(); "
                                     "return [b.width, b.height]", line)
        assert box[0] > 0 and box[1] > 0, f"the received plot's line is not drawn: {box}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "landing.png"))
        height, inner = browser.execute_script(
            "return [document.documentElement.scrollHeight, window.innerHeight]")
        assert height <= inner, f"the landing page scrolls: {height} px in {inner} px"
        browser.get(base + "/associations")
        assert "500 found" in browser.find_element(By.TAG_NAME, "h1").text
        # filter with the form as a person does, then page with the pager's link
        Select(browser.find_element(By.NAME, "outcome")).select_by_visible_text("aborted")
        submit(browser, "#association-filters button")
        assert "outcome=aborted" in browser.current_url
        assert "50 found" in browser.find_element(By.TAG_NAME, "h1").text
        assert "page 1 of 1" in browser.find_element(By.CSS_SELECTOR, "nav.pager").text
        browser.get(base + "/associations")
        browser.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]").click()
        assert "page=2" in browser.current_url
        assert "page 2 of 10" in browser.find_element(By.CSS_SELECTOR, "nav.pager").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#association-history tbody tr")
        assert len(rows) == 50
    finally:
        server.should_exit = True
        thread.join(10)
