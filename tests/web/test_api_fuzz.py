"""A bounded schemathesis run against the OpenAPI schema, logged in with a CSRF token: no
generated request may make the server fail (5xx). Operations that would reach the network
(peer echo) or end the session (factory reset, password change, logout) are covered by their
own tests instead."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from appliance.core.events import EventBus
from appliance.core.providers import Providers
from appliance.core.runtime import Runtime
from appliance.core.supervisor import Supervisor
from appliance.web.app import create_app
from appliance.web.context import WebContext
from tests.web.conftest import PASSWORD, RebootRecorder
from tests.web.test_operations import RecordingPrint, RecordingQueue, RecordingWorklist

EXCLUDED = r"^/api/v1/(peers/\{name\}/echo|factory-reset|password|logout)$"


@pytest.fixture
def fuzz_target(tmp_path):
    """The app over a supervisor that is never run: generated configuration changes are written
    to a file under tmp_path and never applied (no directories are created anywhere)."""
    from appliance.config.loader import load_file

    config_path = tmp_path / "appliance.toml"
    config_path.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n')
    providers = Providers(queue=RecordingQueue(), printing=RecordingPrint(),
                          worklist=RecordingWorklist(), system=RebootRecorder())
    config = load_file(config_path)
    runtime = Runtime(EventBus(), config_path)
    # A supervisor that is never run: healthy (no components), reload requests only noted.
    runtime.supervisor = Supervisor(config, [], config_path=config_path, bus=runtime.bus)
    context = WebContext(config, runtime, providers)
    context.passwords.set(PASSWORD)
    session = context.sessions.new(authenticated=True)
    app = create_app(context)
    original = config_path.read_text()

    def reset() -> None:
        """Undo what an earlier case changed (a restore may move the data directory and with
        it the password file), so every case runs logged in against the same appliance."""
        config_path.write_text(original)
        context.configure(config)
    app.state.fuzz_reset = reset
    app.state.fuzz_headers = {"Cookie": f"appliance_session={session.token}",
                              "X-CSRF-Token": session.csrf}
    return app


def test_no_generated_request_makes_a_server_error(fuzz_target):
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_target).exclude(
        path_regex=EXCLUDED)
    headers = fuzz_target.state.fuzz_headers
    tested = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            fuzz_target.state.fuzz_reset()
            response = case.call(headers=dict(headers))
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        check()
        tested.append(operation.label)
    assert len(tested) >= 20, tested
    assert statuses[401] == 0 or statuses[401] < sum(statuses.values()) // 4, statuses
