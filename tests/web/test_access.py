"""Who may reach which route: every configuration and action route needs a login, every
state-changing call its CSRF token; /api/health and /metrics are open; the dashboard only
when [web] public_status is on."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from tests.web.conftest import PASSWORD, page_csrf

OPEN = {"/api/health", "/metrics", "/api/v1/setup", "/api/v1/login", "/setup", "/login",
        "/logout", "/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"}


def all_routes():
    from appliance.web import api, metrics, operations_pages, pages

    routes = []
    for router in (api.router, metrics.router, pages.router, operations_pages.router):
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods - {"HEAD"}):
                    routes.append((method, route.path))
    return routes


ROUTES = all_routes()
GUARDED = [(m, p) for m, p in ROUTES if p not in OPEN and p != "/"]


def concrete(path: str) -> str:
    """A real URL for a route pattern (the section and list index exist)."""
    if path == "/config/{name}/{index}/delete":
        return "/config/peers/0/delete"
    return re.sub(r"\{[^}]+\}", "x", path.replace("/config/{name}", "/config/peers"))


def test_the_route_list_covers_the_pages_and_the_api():
    paths = {p for _, p in ROUTES}
    for expected in ("/", "/config/{name}", "/peers/{peer}/test", "/operations/restore",
                     "/logs/{name}/download", "/api/v1/config", "/api/v1/status",
                     "/api/v1/peers/{name}/echo", "/api/v1/logs/{name}", "/queue",
                     "/api/v1/worklist", "/api/v1/print/jobs"):
        assert expected in paths
    assert len(GUARDED) > 40


@pytest.mark.parametrize("method,path", GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
def test_refused_without_login(logged_in, method, path):
    setup, _ = logged_in
    anonymous = setup.new_client()
    answer = anonymous.request(method, concrete(path), follow_redirects=False)
    if path.startswith("/api/"):
        assert answer.status_code == 401, answer.text
    elif method == "GET":
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
    else:
        # A page POST from someone without a session: redirected to log in, never executed.
        assert answer.status_code in (303, 403)


@pytest.mark.parametrize("method,path", [(m, p) for m, p in GUARDED if m != "GET"],
                         ids=[f"{m} {p}" for m, p in GUARDED if m != "GET"])
def test_refused_without_csrf_token(logged_in, method, path):
    setup, _ = logged_in
    before = setup.config_path.read_text()
    if path.startswith("/api/"):
        answer = setup.client.request(method, concrete(path), json={})
        assert answer.status_code == 403, answer.text
        assert "X-CSRF-Token" in answer.json()["detail"]
    else:
        answer = setup.client.request(method, concrete(path), data={"confirm": "reset"},
                                      follow_redirects=False)
        assert answer.status_code == 403, answer.text
    assert setup.config_path.read_text() == before
    assert setup.reboots.calls == 0


def test_a_wrong_csrf_token_is_refused_too(logged_in):
    setup, _ = logged_in
    answer = setup.client.patch("/api/v1/config", json={"changes": {"dicom.port": 104}},
                                headers={"X-CSRF-Token": "forged"})
    assert answer.status_code == 403
    answer = setup.client.post("/config/dicom", data={"csrf_token": "forged", "form": "dicom",
                                                      "port": "104"})
    assert answer.status_code == 403
    assert "port" not in setup.config_path.read_text()


def test_before_a_password_exists_every_page_leads_to_setup(web):
    setup = web()
    for path in ("/", "/config/dicom", "/operations", "/logs", "/login"):
        answer = setup.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/setup", path
    assert setup.client.get("/api/v1/config").status_code == 401
    assert "appliance passwd" in setup.client.get("/api/v1/config").json()["detail"]


def test_health_and_metrics_need_no_login(logged_in):
    setup, _ = logged_in
    anonymous = setup.new_client()
    health = anonymous.get("/api/health")
    assert health.status_code == 200
    assert {"name": "datadir", "state": "running"}.items() <= health.json()["components"][0].items()
    metrics = anonymous.get("/metrics")
    assert metrics.status_code == 200
    assert 'appliance_component_up{component="datadir"} 1.0' in metrics.text


def test_status_page_is_private_unless_made_public(web):
    private = web()
    private.setup_password(private.new_client())
    assert private.client.get("/", follow_redirects=False).status_code == 303
    assert private.client.get("/api/v1/status").status_code == 401

    public = web("[web]\npublic_status = true\n")
    public.setup_password(public.new_client())
    page = public.client.get("/", follow_redirects=False)
    assert page.status_code == 200 and "EDGEBOX" in page.text
    assert public.client.get("/api/v1/status").json()["identity"]["ae_title"] == "EDGEBOX"
    # Public status never opens configuration or actions.
    assert public.client.get("/config/dicom", follow_redirects=False).status_code == 303
    assert public.client.get("/api/v1/config").status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(web):
    setup = web()
    answer = setup.client.post("/api/v1/setup", json={"password": PASSWORD,
                                                       "setup_code": setup.setup_code()})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP here; see test_https for the Secure flag


def test_login_form_needs_its_csrf_token_and_rotates_the_session(web):
    setup = web()
    setup.setup_password(setup.new_client())
    client = setup.client
    page = client.get("/login")
    anonymous_cookie = client.cookies.get("appliance_session")
    refused = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 403
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": page_csrf(page.text),
                                         "next": "//evil.example/"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert client.cookies.get("appliance_session") != anonymous_cookie
    assert client.get("/config/dicom").status_code == 200


def test_logins_are_rate_limited(web):
    setup = web()
    setup.setup_password(setup.new_client())
    for _ in range(5):
        assert setup.client.post("/api/v1/login", json={"password": "wrong guess"}
                                 ).status_code == 401
    locked = setup.client.post("/api/v1/login", json={"password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 59
    page = setup.client.get("/login")
    form = setup.client.post("/login", data={"password": PASSWORD,
                                             "csrf_token": page_csrf(page.text)})
    assert form.status_code == 429 and "too many failed attempts" in form.text


def test_first_password_only_once_and_not_too_short(web):
    setup = web()
    code = setup.setup_code()
    assert setup.client.post("/api/v1/setup", json={"password": "short", "setup_code": code}
                             ).status_code == 400
    assert not setup.context.passwords.is_set()
    setup.setup_password()
    again = setup.new_client().post("/api/v1/setup", json={"password": "another password",
                                                           "setup_code": code})
    assert again.status_code == 409
    page = setup.new_client()
    assert page.get("/setup", follow_redirects=False).headers["location"] == "/login"


def test_sessions_end_after_the_idle_time():
    from appliance.web.sessions import SessionStore

    now = [1000.0]
    store = SessionStore(idle_seconds=1800, clock=lambda: now[0])
    session = store.new(authenticated=True)
    now[0] += 1799
    assert store.get(session.token) is session  # a request keeps it alive
    now[0] += 1801
    assert store.get(session.token) is None
