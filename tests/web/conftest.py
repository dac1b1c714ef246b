"""Fixtures for the web page: an in-process app over a real supervisor (running the data
directory watch) with TestClient, helpers to log in and read CSRF tokens and the one-time setup
code, and a recorder for the reboot action (the one operation a test must not really perform)."""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # Starlette's TestClient says it still uses httpx
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from appliance.config.loader import load_file
from appliance.core.data_dir import DataDirectoryMonitor
from appliance.core.events import EventBus
from appliance.core.health import HealthView
from appliance.core.providers import Providers
from appliance.core.runtime import Runtime
from appliance.core.supervisor import Supervisor
from appliance.web.app import create_app
from appliance.web.context import WebContext

PASSWORD = "correct horse battery"


class RebootRecorder:
    """Stands in for `systemctl reboot`."""

    def __init__(self):
        self.calls = 0

    def reboot(self) -> None:
        self.calls += 1


class WebSetup:
    """`components(config, bus)` gives components supervised beside the data directory watch
    (started before the web page is served); `health` is the LED's picture of the bus."""

    def __init__(self, tmp_path: Path, extra_toml: str = "", providers: Providers | None = None,
                 components=None):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.data_dir = tmp_path / "data"
        self.config_path = tmp_path / "appliance.toml"
        self.config_path.write_text(f'[device]\ndata_dir = "{self.data_dir}"\n{extra_toml}')
        config = load_file(self.config_path)
        self.bus = EventBus()
        self.events = []
        self.bus.subscribe(self.events.append)
        self.health = HealthView(self.bus)
        self.runtime = Runtime(self.bus, self.config_path)
        extra = components(config, self.bus) if components else []
        self.components = extra
        self.supervisor = Supervisor(config, [DataDirectoryMonitor(config), *extra],
                                     config_path=self.config_path, bus=self.bus, tick=0.05)
        self.runtime.supervisor = self.supervisor
        self.reboots = RebootRecorder()
        providers = providers or Providers()
        providers.system = self.reboots
        self.context = WebContext(config, self.runtime, providers)
        self.context.attach()
        self.app = create_app(self.context)
        self.client = TestClient(self.app)
        self._thread = threading.Thread(target=self.supervisor.run, daemon=True)
        self._thread.start()
        self.wait(lambda: self.supervisor.ready)

    def wait(self, predicate, timeout: float = 5.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.02)

    def new_client(self) -> TestClient:
        return TestClient(self.app)

    def setup_code(self) -> str:
        return read_setup_code(self.data_dir)

    def setup_password(self, client: TestClient | None = None) -> str:
        client = client or self.client
        answer = client.post("/api/v1/setup", json={"password": PASSWORD,
                                                    "setup_code": self.setup_code()})
        assert answer.status_code == 200, answer.text
        return answer.json()["csrf_token"]

    def login(self, client: TestClient | None = None) -> str:
        client = client or self.client
        answer = client.post("/api/v1/login", json={"password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return answer.json()["csrf_token"]

    def close(self) -> None:
        self.supervisor.request_stop()
        self._thread.join(10)
        self.context.detach()
        self.client.close()


def read_setup_code(data_dir: Path, timeout: float = 20.0) -> str:
    """The one-time setup code of a box without a password, as root reads it on the box: the
    file `data_dir/web/setup-code` (0600) the web component writes at start (waited for)."""
    import time

    path = data_dir / "web" / "setup-code"
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert time.monotonic() < deadline, f"no setup code in {path}"
        time.sleep(0.05)
    return path.read_text().strip()


def page_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def errors_in(html: str) -> list[str]:
    return re.findall(r'class="error"[^>]*>([^<]+)<', html)


@pytest.fixture
def web(tmp_path):
    """Factory: an app with the given extra TOML; the first one is also `web()`'s default."""
    made: list[WebSetup] = []

    def make(extra_toml: str = "", providers: Providers | None = None,
             components=None) -> WebSetup:
        setup = WebSetup(tmp_path / f"w{len(made)}", extra_toml, providers, components)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.close()


@pytest.fixture
def logged_in(web):
    """(setup, csrf token) with the password set and the client logged in."""
    setup = web()
    token = setup.setup_password()
    return setup, token

