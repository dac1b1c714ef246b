"""Pages from the Jinja2 templates: the template set with its filters, `render` (what every page
needs: CSRF token, login state, nav) and the session cookie every answer that logs in sets."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from appliance import __version__
from appliance.web import system_info, timefmt
from appliance.web.context import WebContext
from appliance.web.security import session
from appliance.web.sessions import COOKIE_NAME, CSRF_FIELD

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["duration"] = system_info.format_duration
templates.env.filters["bytes"] = system_info.format_bytes
templates.env.filters["short_uid"] = system_info.short_uid
templates.env.filters["ago"] = timefmt.ago
templates.env.filters["iso"] = timefmt.iso


def render(request: Request, template: str, status_code: int = 200, **values):
    """A page from templates/ with what every page needs (CSRF token, login state, nav)."""
    ctx: WebContext = request.app.state.context
    current = session(request)
    values.setdefault("flash", current.flash[:])
    current.flash.clear()
    return templates.TemplateResponse(request, template, {
        "csrf_field": CSRF_FIELD, "csrf_token": current.csrf,
        "logged_in": current.authenticated, "device": ctx.config.device.name,
        "ae_title": ctx.config.dicom.ae_title, "version": __version__,
        "providers": ctx.providers, **values}, status_code=status_code)


def set_session_cookie(request: Request, response, token: str) -> None:
    ctx: WebContext = request.app.state.context
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="strict",
                        secure=ctx.config.web.https, path="/")
    request.state.cookie_set = True
