"""Who may do what: FastAPI dependencies for sessions, login and CSRF checks.

Pages: a visitor without a session gets an anonymous one (with a CSRF token for the login
form); until the administrator password exists every page leads to /setup; every
configuration and action page needs a logged-in session and every POST the session's CSRF
token. The API answers 401/403 as JSON instead of redirecting; state-changing calls need the
token in the X-CSRF-Token header.

Programs may send an API token (`Authorization: Bearer TOKEN`, appliance.web.api_tokens)
instead of a session: it allows GET and HEAD requests to /dicom-web/ and /api/v1/ (not the
configuration backup, which holds the secrets); a missing, wrong or revoked token is a 401
with a WWW-Authenticate header, any other method with a token a 403.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import quote

from fastapi import HTTPException, Request

from appliance.web.context import WebContext
from appliance.web.sessions import COOKIE_NAME, CSRF_FIELD, CSRF_HEADER, Session

log = logging.getLogger(__name__)


class Redirect(Exception):  # noqa: N818 - control flow, turned into a 303 by the app
    """Answer with a redirect to `location` (handled by the application)."""

    def __init__(self, location: str):
        self.location = location


def context(request: Request) -> WebContext:
    return request.app.state.context


def session(request: Request) -> Session:
    """The visitor's session; a new anonymous one (cookie set on the answer) if none."""
    ctx = context(request)
    existing = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
    if existing is not None:
        return existing
    cached = getattr(request.state, "new_session", None)
    if cached is not None:
        return cached
    created = ctx.sessions.new()
    request.state.new_session = created
    return created


def client_address(request: Request) -> str:
    """The client's address: the peer's, or, when the peer is one of `[web]
    trusted_proxies`, the nearest untrusted address in its X-Forwarded-For header."""
    return forwarded_client(request.client.host if request.client else "unknown",
                            request.headers.getlist("x-forwarded-for"),
                            context(request).config.web.trusted_proxies)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: list[str]) -> str:
    """X-Forwarded-For read from the right: each trusted proxy names the hop before it, the
    first hop that is not a trusted proxy is the client. A header from an untrusted peer is
    ignored, and so is everything left of an entry that is not an address."""
    networks = [ipaddress.ip_network(net, strict=False) for net in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    client = peer
    if not networks or not is_trusted(peer):
        return client
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not is_trusted(hop):
            break
    return client


def page_login(request: Request) -> Session:
    """A logged-in session, or a redirect to /setup (no password yet) or /login."""
    ctx = context(request)
    current = session(request)
    if not ctx.passwords.is_set():
        raise Redirect("/setup")
    if not current.authenticated:
        target = request.url.path if request.method == "GET" else "/"
        raise Redirect(f"/login?next={quote(target, safe='/')}")
    return current


def status_page_access(request: Request) -> Session:
    """The dashboard: public when `[web] public_status` is on, else like any other page."""
    if context(request).config.web.public_status:
        return session(request)
    return page_login(request)


async def page_csrf(request: Request) -> None:
    """Every POST from a page carries the session's CSRF token as a form field."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not session(request).csrf_matches(token):
        log.warning("refused %s %s from %s: missing or wrong CSRF token", request.method,
                    request.url.path, client_address(request))
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


async def page_action(request: Request) -> Session:
    """A POST that changes something: logged in, with the CSRF token."""
    current = page_login(request)
    await page_csrf(request)
    return current


BEARER_CHALLENGE = 'Bearer realm="appliance"'
READ_METHODS = ("GET", "HEAD")
#: GET routes an API token does not open.
TOKEN_EXCLUDED = frozenset({"/api/v1/config/backup"})


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header; None without the header; a 401 for
    any other kind of Authorization."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(401, "only `Authorization: Bearer TOKEN` is understood",
                            headers={"WWW-Authenticate": BEARER_CHALLENGE +
                                     ', error="invalid_request"'})
    return value.strip()


def token_access(request: Request, token: str) -> Session:
    """A read-only request with an API token: allowed, or 401 / 403 with the reason."""
    if request.method not in READ_METHODS or request.url.path in TOKEN_EXCLUDED:
        raise HTTPException(403, "API tokens are read-only: this request needs a login")
    name = context(request).tokens.verify(token)
    if name is None:
        log.warning("refused %s %s from %s: unknown or revoked API token", request.method,
                    request.url.path, client_address(request))
        raise HTTPException(401, "the API token is not valid (unknown or revoked)",
                            headers={"WWW-Authenticate": BEARER_CHALLENGE +
                                     ', error="invalid_token"'})
    return Session(token="", csrf="", authenticated=True, last_seen=0.0)  # no CSRF: no POST


def read_access(request: Request) -> Session:
    """DICOMweb: a logged-in session (the page's cookie) or an API token; else 401."""
    token = bearer_token(request)
    if token is not None:
        return token_access(request, token)
    current = context(request).sessions.get(request.cookies.get(COOKIE_NAME))
    if current is None or not current.authenticated:
        raise HTTPException(401, "login required: the web page's session or "
                            "`Authorization: Bearer TOKEN` (appliance api-token create NAME)",
                            headers={"WWW-Authenticate": BEARER_CHALLENGE})
    return current


def api_login(request: Request) -> Session:
    ctx = context(request)
    token = bearer_token(request)
    if token is not None:
        return token_access(request, token)
    current = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
    if not ctx.passwords.is_set():
        raise HTTPException(401, "no administrator password is set yet: set one with "
                            "POST /api/v1/setup or `appliance passwd`")
    if current is None or not current.authenticated:
        raise HTTPException(401, "login required (POST /api/v1/login)")
    return current


def api_action(request: Request) -> Session:
    current = api_login(request)
    if not current.csrf_matches(request.headers.get(CSRF_HEADER)):
        log.warning("refused %s %s from %s: missing or wrong %s header", request.method,
                    request.url.path, client_address(request), CSRF_HEADER)
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (its value is the "
                            "csrf_token returned by POST /api/v1/login)")
    return current


def api_status_access(request: Request) -> None:
    if not context(request).config.web.public_status:
        api_login(request)
