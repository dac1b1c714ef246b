"""The queue page's stuck instances (issue 18), over a running appliance whose destination (a
real pynetdicom SCP on 127.0.0.1) refused one instance: its row shows patient, study, the SOP
Instance UID and the error that instance got; Skip and Retry on the page act on it alone."""

from __future__ import annotations

import html

from appliance.config.loader import load_file
from appliance.core.providers import Providers
from appliance.web.forward_provider import ForwardQueueProvider
from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_json
from tests.forward.test_poison_instance import picky_pacs  # noqa: F401
from tests.forward.test_queue_instances import refused_one, stuck
from tests.web.conftest import page_csrf, web  # noqa: F401


def test_a_refused_instance_shows_its_own_error_and_retry_and_skip_work_from_the_page(
        appliance, picky_pacs, web, tmp_path):  # noqa: F811
    pacs, config, refused = refused_one(appliance, picky_pacs, tmp_path)
    setup = web(providers=Providers(queue=ForwardQueueProvider(load_file(config))))
    setup.setup_password()
    page = setup.client.get("/queue").text
    assert "picky: stuck instances" in page
    assert f'title="{refused}"' in page
    assert "Test Patient" in page and "2024-01-01" in page
    row = page[page.index(f'title="{refused}"'):]
    assert "answered C-STORE status 0xA700" in html.unescape(row[:row.index("</tr>")])
    own = setup.client.get("/queue/picky/instances").text
    assert f'value="{refused}"' in own and "1 instances tried and not delivered" in own

    answer = setup.client.post("/queue/picky/instances/skip",
                               data={"csrf_token": page_csrf(page), "uid": refused})
    assert answer.status_code in (200, 303)
    assert stuck(config)[refused]["state"] == "failed"
    page = setup.client.get("/queue").text
    assert "skipped by the operator" in page

    assert setup.client.post("/queue/picky/instances/retry",
                             data={"uid": refused}).status_code == 403  # no CSRF token
    pacs.refuse_uid = ""
    answer = setup.client.post("/queue/picky/instances/retry",
                               data={"csrf_token": page_csrf(page), "uid": refused})
    assert answer.status_code in (200, 303)
    wait_until(lambda: refused in pacs.received(), 15, what="the retried instance delivered")
    wait_until(lambda: queue_json(config)["picky"]["done"] == 3, 10, what="all 3 done")
    assert "stuck instances" not in setup.client.get("/queue").text
    answer = setup.client.post("/queue/picky/instances/retry",
                               data={"csrf_token": page_csrf(page), "uid": "1.2.3"})
    assert answer.status_code == 404 and "no undelivered instance" in answer.text
