"""The web application: FastAPI with Jinja2 templates and local static files, built around one
`WebContext`. Pages live in `pages`/`operations_pages`, the JSON API in `api`, Prometheus
metrics in `metrics`."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from appliance import __version__
from appliance.web import (
    api,
    dicomweb,
    history_pages,
    metrics,
    operations_pages,
    pages,
    tls_pages,
    update_pages,
)
from appliance.web.context import NotAvailable, WebContext
from appliance.web.rendering import render, set_session_cookie
from appliance.web.request_limits import RequestLimits
from appliance.web.security import Redirect

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'",
}


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(title="DICOM Edge Appliance", version=__version__,
                  description="Status, configuration and operations of the appliance. "
                  "Log in with POST /api/v1/login; send the returned csrf_token as the "
                  "X-CSRF-Token header with every state-changing call.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.context = ctx
    # Added first, so it runs inside the headers middleware below (its answers get them too).
    app.add_middleware(RequestLimits, is_logged_in=ctx.sessions.is_logged_in)

    @app.middleware("http")
    async def cookies_and_headers(request: Request, call_next):
        response = await call_next(request)
        new = getattr(request.state, "new_session", None)
        if new is not None and not getattr(request.state, "cookie_set", False):
            set_session_cookie(request, response, new.token)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(Redirect)
    async def redirect(request: Request, exc: Redirect):
        response = RedirectResponse(exc.location, status_code=303)
        new = getattr(request.state, "new_session", None)
        if new is not None:
            set_session_cookie(request, response, new.token)
        return response

    @app.exception_handler(NotAvailable)
    async def not_available(request: Request, exc: NotAvailable):
        return _error(request, 404, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: FastAPIHTTPException):
        return _error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(history_pages.router)
    app.include_router(tls_pages.router)
    app.include_router(operations_pages.router)
    app.include_router(update_pages.router)
    app.include_router(dicomweb.router)
    return app


def _error(request: Request, status: int, detail: str, headers=None):
    if request.url.path.startswith(("/api/", "/dicom-web/")) or request.url.path == "/metrics":
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    response = render(request, "message.html", status_code=status, title=f"Error {status}",
                      message=detail)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
