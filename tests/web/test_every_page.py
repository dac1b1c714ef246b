"""Every page a logged-in technician can reach from the navigation, in a real browser (Debian's
headless Chromium through selenium) at 1366x768, a common laptop screen:

- no page prints a Python object's repr (`<built-in method ...>`, `... object at 0x...`, a
  bare `None`);
- the keyboard alone reaches every link, button and input (Tab through the page), and each
  shows a visible focus style when it has the focus;
- the page passes axe-core's automated accessibility check with no serious or critical
  violation (axe-core comes from the npm registry: `make venv-test` installs it under
  .venv/npm; it is not committed);
- a screenshot of each page of the main navigation is written to docs/screenshots/NAME.png
  (linked from the README).

The pages are found by following the links of the main navigation (and the configuration
page's section list), so a page added to the navigation later is checked without touching
this file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import DCMTK_ENV, REPO, ApplianceProcess, free_port, write_config
from tests.web.conftest import read_setup_code
from tests.web.test_browser import CHROMEDRIVER, CHROMIUM, fill, submit

#: Installed by `make venv-test` beside the venv that runs the tests (`.venv/npm`).
AXE = Path(sys.prefix) / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "screenshots"
WIDTH, HEIGHT = 1366, 768

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (make installs them)")

#: What a template prints when it shows a Python object instead of its value.
REPR = re.compile(r"<built-in|<bound method|object at 0x[0-9a-f]+|(?<![\w'\"])None(?![\w'\"])")

FOCUSABLE = ("a[href], button, input:not([type=hidden]), select, textarea, "
             "[tabindex]:not([tabindex='-1'])")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A running appliance with a peer, a destination and some history, and a browser logged
    in to it: (browser, base URL)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    tmp = tmp_path_factory.mktemp("every-page")
    dicom_port, web_port = free_port(), free_port()
    config = write_config(tmp / "appliance.toml", {
        "device": {"data_dir": str(tmp / "data")},
        "dicom": {"port": dicom_port, "bind": "127.0.0.1"},
        "web": {"port": web_port, "bind": "127.0.0.1"},
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                   "port": free_port()}],
        "destinations": [{"peer": "pacs", "retry_initial": 3600.0, "retry_max": 3600.0}],
    })
    box = ApplianceProcess(config, tmp / "appliance.log")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--user-data-dir={tmp / 'chromium-profile'}",
                 f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = None
    try:
        box.wait_ready()
        for _ in range(3):  # a few associations in the history
            subprocess.run(["echoscu", "-aet", "CT1", "-aec", "EDGEBOX", "127.0.0.1",
                            str(dicom_port)], env=DCMTK_ENV, capture_output=True, timeout=30)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                  options=options)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(60)
        base = f"http://127.0.0.1:{web_port}"
        driver.get(base + "/")
        fill(driver, "setup_code", read_setup_code(tmp / "data"))
        fill(driver, "password", "every page password")
        fill(driver, "password_again", "every page password")
        submit(driver, "form[action='/setup'] button")
        set_viewport(driver)
        yield driver, base
    finally:
        if driver is not None:
            driver.quit()
        box.stop()


def set_viewport(driver) -> None:
    """Make the page area (not the window) exactly WIDTH x HEIGHT."""
    driver.set_window_size(WIDTH, HEIGHT)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * WIDTH - inner[0], 2 * HEIGHT - inner[1])


def same_site_links(driver, base: str, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    paths = []
    for link in driver.find_elements(By.CSS_SELECTOR, css):
        url = urlsplit(link.get_attribute("href") or "")
        if f"{url.scheme}://{url.netloc}" == base and url.path not in paths:
            paths.append(url.path)
    return paths


@pytest.fixture(scope="module")
def nav_pages(site) -> list[str]:
    """The paths of the main navigation's links, found on the landing page."""
    driver, base = site
    driver.get(base + "/")
    pages = same_site_links(driver, base, "header nav a[href], header a.brand")
    assert "/" in pages and "/config" in pages and len(pages) >= 6, pages
    return pages


@pytest.fixture(scope="module")
def every_page(site, nav_pages) -> list[str]:
    """The main navigation's pages and every configuration section's page."""
    driver, base = site
    driver.get(base + "/config")
    sections = same_site_links(driver, base, "nav.sections a[href]")
    assert "/config/dicom" in sections and "/config/storage_commitment" in sections, sections
    return [*nav_pages, *(s for s in sections if s not in nav_pages)]


def visit(driver, base: str, path: str) -> None:
    driver.get(base + path)
    assert urlsplit(driver.current_url).path.startswith(path), \
        f"{path} went to {driver.current_url} (logged out?)"
    assert "Not Found" not in driver.title and "Internal Server Error" not in \
        driver.page_source[:2000], f"{path}: {driver.title}"


def test_no_page_prints_a_python_object(site, every_page):
    from selenium.webdriver.common.by import By

    driver, base = site
    found = {}
    for path in every_page:
        visit(driver, base, path)
        text = driver.find_element(By.TAG_NAME, "body").get_attribute("textContent")
        values = " ".join(driver.execute_script(
            "return Array.from(document.querySelectorAll('input, textarea, option'))"
            ".map(e => e.value || '')"))
        hits = REPR.findall(text + " " + values)
        if hits:
            found[path] = hits
    assert not found


def test_the_scan_finds_a_repr_when_there_is_one():
    assert REPR.search("worklist <built-in method items of dict object at 0x7f3a>")
    assert REPR.search("last error: None") and REPR.search("<Foo object at 0xdeadbeef>")
    assert not REPR.search("display: none") and not REPR.search("Nonexistent 'None'")


FOCUS_WALK = """
const focusable = Array.from(document.querySelectorAll(arguments[0]))
  .filter(e => !e.disabled && e.getClientRects().length > 0
               && getComputedStyle(e).visibility !== 'hidden');
focusable.forEach((e, i) => e.setAttribute('data-probe', i));
return focusable.map(e => e.outerHTML.slice(0, 120));
"""

FOCUS_STYLE = """
const e = document.activeElement;
if (!e || e === document.body) return null;
const s = getComputedStyle(e);
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const shadow = s.boxShadow && s.boxShadow !== 'none';
return {probe: e.getAttribute('data-probe'), html: e.outerHTML.slice(0, 120),
        visible: outline || shadow, focusVisible: e.matches(':focus-visible')};
"""


def keyboard_walk(driver) -> tuple[list[str], list[str]]:
    """Tab from the top once round the page: (the actions never reached, the ones reached
    without a visible focus style)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    wanted = driver.execute_script(FOCUS_WALK, FOCUSABLE)
    assert wanted, f"{driver.current_url} has nothing to act on"
    reached: set[str] = set()
    unmarked: list[str] = []
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    previous = None
    # A date-time input takes several Tab stops (day, month, year, ...): at most 8 per action.
    for _ in range(8 * len(wanted) + 5):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        state = driver.execute_script(FOCUS_STYLE)
        if state is None:
            continue
        if state["probe"] == previous:
            continue  # the next field inside the same input
        previous = state["probe"]
        if state["probe"] in reached:
            break  # round the page once
        reached.add(state["probe"])
        if not (state["visible"] and state["focusVisible"]):
            unmarked.append(state["html"])
    return [html for i, html in enumerate(wanted) if str(i) not in reached], unmarked


def test_the_keyboard_alone_reaches_every_action_with_a_visible_focus(site, every_page):
    driver, base = site
    unreached, unmarked = {}, {}
    for path in every_page:
        visit(driver, base, path)
        missing, hidden = keyboard_walk(driver)
        if missing:
            unreached[path] = missing
        if hidden:
            unmarked[path] = hidden
    assert not unreached, json.dumps(unreached, indent=1)
    assert not unmarked, json.dumps(unmarked, indent=1)


def test_the_keyboard_walk_sees_a_skipped_action_and_a_hidden_focus(site):
    driver, base = site
    visit(driver, base, "/operations")
    driver.execute_script("""
        document.querySelector('main button').setAttribute('tabindex', '-1');
        document.querySelectorAll('main a').forEach(
            e => e.style.setProperty('outline', 'none', 'important'));""")
    missing, hidden = keyboard_walk(driver)
    assert len(missing) == 1 and ">Identify</button>" in missing[0]
    assert hidden and all(h.startswith("<a ") for h in hidden)


AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))),
  e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


def axe_violations(driver) -> list[dict]:
    """axe-core's serious and critical violations on the page shown."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    violations = driver.execute_async_script(AXE_RUN)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


needs_axe = pytest.mark.skipif(not AXE.is_file(),
                               reason="axe-core is not installed: run `make venv-test`")


@needs_axe
def test_every_page_passes_the_axe_core_accessibility_check(site, every_page):
    driver, base = site
    serious = {}
    for path in every_page:
        visit(driver, base, path)
        bad = axe_violations(driver)
        if bad:
            serious[path] = bad
    assert not serious, json.dumps(serious, indent=1)


@needs_axe
def test_axe_sees_an_unlabelled_input(site):
    driver, base = site
    visit(driver, base, "/operations")
    driver.execute_script("document.querySelector('main').insertAdjacentHTML('beforeend', "
                          "'<input type=text name=x>')")
    assert [v["id"] for v in axe_violations(driver)] == ["label"]


def screenshot_name(path: str) -> str:
    """'/' -> 'status', '/config/peers' -> 'config-peers'."""
    return path.strip("/").replace("/", "-") or "status"


def test_screenshots_of_the_main_navigation(site, nav_pages):
    """Runs last in this module (pytest keeps file order): the pictures show the pages as the
    checks above left them."""
    driver, base = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in nav_pages:
        visit(driver, base, path)
        target = SCREENSHOTS / f"{screenshot_name(path)}.png"
        assert driver.save_screenshot(str(target)), path
        assert target.stat().st_size > 5_000, f"{target} is nearly empty"
        width, height = png_size(target)
        assert (width, height) == (WIDTH, HEIGHT), (path, width, height)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
