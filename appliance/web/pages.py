"""The HTML pages: first-visit password, login, dashboard and the configuration forms.

Plain HTML forms posting back to the server (they work without JavaScript); every POST carries
the CSRF token and every change goes through the schema before it is written.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse

from appliance.config import editor
from appliance.core.errors import ConfigError
from appliance.web import charts, config_forms, tls_certificate
from appliance.web.context import WebContext
from appliance.web.passwords import PasswordError
from appliance.web.rendering import render, set_session_cookie
from appliance.web.security import (
    client_address,
    context,
    page_action,
    page_csrf,
    page_login,
    session,
    status_page_access,
)
from appliance.web.setup_code import WRONG_SETUP_CODE
from appliance.web.stats import DEFAULT_MINUTES

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _form_values(form) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    return values


def _safe_next(target: str | None) -> str:
    """Only a local path may follow a login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _login_session(request: Request, ctx: WebContext, response) -> None:
    """Start a fresh logged-in session (a new token, so a planted one is useless)."""
    old = session(request)
    ctx.sessions.end(old.token)
    new = ctx.sessions.new(authenticated=True)
    request.state.new_session = None
    set_session_cookie(request, response, new.token)


# -- first visit and login -------------------------------------------------------------------


@router.get("/setup")
def setup_page(request: Request):
    ctx = context(request)
    if ctx.passwords.is_set():
        return RedirectResponse("/login", status_code=303)
    return render(request, "setup.html", title="Set the administrator password")


@router.post("/setup", dependencies=[Depends(page_csrf)])
async def setup_submit(request: Request):
    ctx = context(request)
    client = client_address(request)
    if ctx.passwords.is_set():
        raise HTTPException(409, "the administrator password is already set; log in, or "
                            "change it under Operations")
    form = await request.form()
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))

    def again_with(status: int, error: str):
        return render(request, "setup.html", status_code=status, title="Set the "
                      "administrator password", error=error)

    wait = ctx.limiter.begin(client)
    if wait > 0:
        response = again_with(429, f"too many failed attempts: try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not ctx.setup_code.matches(form.get("setup_code")):
        ctx.limiter.finish(client, ok=False)
        log.warning("first password refused from %s: wrong or missing setup code", client)
        return again_with(403, WRONG_SETUP_CODE)
    ctx.limiter.finish(client, ok=True)
    error = "" if password == again else "the two passwords differ"
    if not error:
        try:
            ctx.set_first_password(password)
        except PasswordError as exc:
            error = str(exc)
    if error:
        return again_with(400, error)
    log.warning("administrator password set from the web page by %s", client)
    response = RedirectResponse("/", status_code=303)
    _login_session(request, ctx, response)
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    ctx = context(request)
    if not ctx.passwords.is_set():
        return RedirectResponse("/setup", status_code=303)
    return render(request, "login.html", title="Log in", next=_safe_next(next))


@router.post("/login", dependencies=[Depends(page_csrf)])
async def login_submit(request: Request):
    ctx = context(request)
    form = await request.form()
    target = _safe_next(str(form.get("next", "/")))
    client = client_address(request)
    wait = ctx.limiter.begin(client)
    if wait > 0:
        response = render(request, "login.html", status_code=429, title="Log in", next=target,
                          error=f"too many failed attempts: try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    ok = False
    try:
        ok = ctx.passwords.verify(str(form.get("password", "")))
    finally:
        ctx.limiter.finish(client, ok=ok)
    if not ok:
        log.warning("failed web login from %s", client)
        return render(request, "login.html", status_code=401, title="Log in", next=target,
                      error="wrong password")
    log.info("web login from %s", client)
    response = RedirectResponse(target, status_code=303)
    _login_session(request, ctx, response)
    return response


@router.post("/logout", dependencies=[Depends(page_csrf)])
def logout(request: Request):
    context(request).sessions.end(session(request).token)
    return RedirectResponse("/login", status_code=303)


# -- dashboard -------------------------------------------------------------------------------


@router.get("/", dependencies=[Depends(status_page_access)])
def dashboard(request: Request):
    ctx = context(request)
    # Who may come in is for the box's administrators, not for a public status page.
    access = ctx.access() if session(request).authenticated else None
    status = ctx.status()
    disk = status["disk"]
    bar = charts.disk_bar(disk["used_percent"], disk["high_water_percent"],
                          100 * disk["reserve_bytes"] / disk["total_bytes"]) \
        if disk and disk["total_bytes"] else ""
    plots = charts.landing_plots(ctx.series(DEFAULT_MINUTES)) if ctx.stats else None
    return render(request, "dashboard.html", title="Status", status=status, access=access,
                  now=time.time(), plots=plots, disk_bar=bar, update=ctx.update_state())


# -- configuration ---------------------------------------------------------------------------


@router.get("/config", dependencies=[Depends(page_login)])
def config_index():
    return RedirectResponse("/config/dicom", status_code=303)


def _section_or_404(name: str) -> str:
    if name not in config_forms.sections():
        raise HTTPException(404, f"no configuration section {name!r}")
    return name


def show_section(request: Request, name: str, spec=None, status_code: int = 200, **extra):
    """The configuration page of section `name` (the dicom page also shows the box's DICOM TLS
    certificate, next to the dicom.tls form)."""
    ctx = context(request)
    spec = spec or config_forms.section_spec(ctx.config, name)
    if name == "dicom":
        extra.setdefault("tls", tls_certificate.card(ctx.config))
    return render(request, "config.html", status_code=status_code, title=f"Configuration: "
                  f"{spec.title}", sections=config_forms.section_titles(), section=spec,
                  config_file=str(ctx.config_path()), **extra)


@router.get("/config/{name}", dependencies=[Depends(page_login)])
def config_section(request: Request, name: str):
    return show_section(request, _section_or_404(name))


@router.post("/config/{name}", dependencies=[Depends(page_action)])
async def config_submit(request: Request, name: str):
    ctx = context(request)
    _section_or_404(name)
    values = _form_values(await request.form())
    prefix = (values.get("form") or [""])[-1]
    spec = config_forms.section_spec(ctx.config, name)
    form = next((f for f in spec.forms if f.prefix == prefix), None)
    if form is None:
        raise HTTPException(400, f"no form {prefix!r} in section {name!r}")
    try:
        changes = config_forms.parse_submission(form, values)
        new = config_forms.write_form_changes(ctx.config_path(), form, changes, values)
    except ConfigError as exc:
        _keep_submitted(form, values)
        config_forms.attach_errors([form], exc)
        return show_section(request, name, spec, status_code=400)
    if new is None:
        session(request).flash.append("nothing changed")
    else:
        ctx.applied(new)
        session(request).flash.append(f"saved and applied: {', '.join(changes)}")
    return RedirectResponse(f"/config/{name}", status_code=303)


@router.post("/config/{name}/add", dependencies=[Depends(page_action)])
async def config_add(request: Request, name: str):
    ctx = context(request)
    if not config_forms.is_list_section(_section_or_404(name)):
        raise HTTPException(404, f"{name} is not a list")
    values = _form_values(await request.form())
    spec = config_forms.section_spec(ctx.config, name)
    try:
        entry = config_forms.parse_new_entry(spec.add_form, values)
        current = config_forms.file_data(ctx.config_path()).get(name, [])
        new = editor.set_values(ctx.config_path(), {name: [*current, entry]})
    except ConfigError as exc:
        _keep_submitted(spec.add_form, values)
        config_forms.attach_errors([spec.add_form], exc)
        return show_section(request, name, spec, status_code=400)
    ctx.applied(new)
    session(request).flash.append(f"added to {name}")
    return RedirectResponse(f"/config/{name}", status_code=303)


@router.post("/config/{name}/{index}/delete", dependencies=[Depends(page_action)])
async def config_delete(request: Request, name: str, index: int):
    ctx = context(request)
    if not config_forms.is_list_section(_section_or_404(name)):
        raise HTTPException(404, f"{name} is not a list")
    current = config_forms.file_data(ctx.config_path()).get(name, [])
    if not 0 <= index < len(current):
        raise HTTPException(404, f"{name} has no entry #{index + 1}")
    try:
        new = editor.set_values(ctx.config_path(),
                                         {name: current[:index] + current[index + 1:]})
    except ConfigError as exc:
        spec = config_forms.section_spec(ctx.config, name)
        config_forms.attach_errors(spec.forms[index:index + 1] or spec.forms, exc)
        return show_section(request, name, spec, status_code=400)
    ctx.applied(new)
    session(request).flash.append(f"removed {name} entry #{index + 1}")
    return RedirectResponse(f"/config/{name}", status_code=303)


@router.post("/peers/{peer}/test", dependencies=[Depends(page_action)])
def peer_test(request: Request, peer: str):
    ctx = context(request)
    result = ctx.echo_peer(peer)
    return show_section(request, "peers", echo_result={"peer": peer, "ok": result.ok,
                                                        "text": str(result)})


def _keep_submitted(form: config_forms.FormSpec, values: dict[str, list[str]]) -> None:
    """Show what the user typed, not the old value, next to an error."""
    for spec in form.fields:
        if spec.kind == "password":
            continue
        submitted = values.get(spec.name)
        if spec.kind == "checkbox":
            spec.value = "true" if submitted and "true" in submitted else ""
        elif submitted:
            spec.value = submitted[-1]

