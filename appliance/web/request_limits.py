"""How big a request body may be, by route, and who may send one at all: an ASGI middleware in
front of every route, so a stranger can make the box neither hold nor spool a large body.

- A body announced (Content-Length) over its route's limit is answered 413, naming the limit,
  before a byte of it is read. A body without a length (chunked) or longer than announced is
  counted as it arrives and refused with 413 as soon as it passes the limit.
- Only the login, setup and logout routes read the body of a visitor who is not logged in;
  any other request that carries a body without a logged-in session is refused (401 for the
  API, a redirect to the login page for pages) without reading it.

The limits (the README lists them): 64 KiB for every form and JSON call, 1 MiB + 64 KiB for a
configuration restore, 192 KiB for a DICOM TLS certificate and key (64 KiB each, and the
form), 4 MiB for a worklist import (whose items are then streamed), and the
bundle limit for a firmware upload (which streams to the data partition). Under 64 KiB
Starlette's form parser never spools a part to a temporary file (it does at 1 MiB), so nothing
a stranger sends reaches the disk.
"""

from __future__ import annotations

import html
import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.update.web_provider import MAX_BUNDLE_BYTES
from appliance.web.restore import MAX_CONFIG_BYTES
from appliance.web.sessions import COOKIE_NAME
from appliance.web.tls_certificate import UPLOAD_LIMIT as TLS_UPLOAD_LIMIT

log = logging.getLogger(__name__)

KIB, MIB = 1024, 1024 * 1024
#: Login, setup, logout, configuration forms and every JSON call.
DEFAULT_LIMIT = 64 * KIB
#: A worklist import (CSV or JSON file, or the JSON API's `data`): about 30,000 CSV items,
#: which a Pi-class CPU checks in about a minute while the import holds the worklist's write
#: lock (the items are streamed, so memory does not grow with their number).
IMPORT_LIMIT = 4 * MIB
#: A configuration backup to restore (the file's limit plus room for the form around it).
RESTORE_LIMIT = MAX_CONFIG_BYTES + 64 * KIB
#: Paths with their own limit; every other path has DEFAULT_LIMIT.
ROUTE_LIMITS = {
    "/api/v1/update/upload": MAX_BUNDLE_BYTES,
    "/api/v1/worklist/import": IMPORT_LIMIT,
    "/worklist/import": IMPORT_LIMIT,
    "/api/v1/config/restore": RESTORE_LIMIT,
    "/operations/restore": RESTORE_LIMIT,
    "/config/dicom/certificate": TLS_UPLOAD_LIMIT,
}
#: The only paths that read a body from a visitor who is not logged in.
OPEN_PATHS = frozenset({"/api/v1/login", "/api/v1/setup", "/login", "/setup", "/logout"})


def body_limit(path: str) -> int:
    return ROUTE_LIMITS.get(path, DEFAULT_LIMIT)


def size_text(size: int) -> str:
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    return f"{size // KIB} KiB" if size % KIB == 0 else f"{size} bytes"


class BodyTooLarge(HTTPException):
    """A request body passed its route's limit while it was being read (answered 413)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body too large: this request may carry at most "
                         f"{size_text(limit)} ({limit} bytes)")
        self.limit = limit


class RequestLimits:
    """Pure ASGI middleware: the route's body limit and the login-before-body rule.

    `is_logged_in(token)` says whether a session cookie's token belongs to a logged-in
    session (the web context's session store answers it)."""

    def __init__(self, app: ASGIApp, is_logged_in):
        self.app = app
        self.is_logged_in = is_logged_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = body_limit(path)
        connection = HTTPConnection(scope)
        headers = connection.headers
        announced = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            length = int(announced) if announced is not None else None
        except ValueError:
            await _answer(scope, send, 400, "the Content-Length header is not a number")
            return
        has_body = chunked or bool(length)
        client = scope["client"][0] if scope.get("client") else "unknown"
        if has_body and path not in OPEN_PATHS \
                and not self.is_logged_in(connection.cookies.get(COOKIE_NAME)):
            log.warning("refused %s %s from %s: a body without a login (not read)",
                        scope["method"], path, client)
            if path.startswith("/api/"):
                await _answer(scope, send, 401, "login required (POST /api/v1/login); the "
                              "request body was not read")
            else:
                await _redirect(send, "/login")
            return
        if length is not None and length > limit:
            log.warning("refused %s %s from %s: body of %d bytes announced, the limit is %d",
                        scope["method"], path, client, length, limit)
            await _answer(scope, send, 413, BodyTooLarge(limit).detail)
            return

        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if refused:  # the rest of the body is not wanted: close after the answer
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:
            log.warning("refused %s %s from %s: body passed the limit of %d bytes",
                        scope["method"], path, client, exc.limit)
            if not started:
                await _answer(scope, send, 413, exc.detail)


async def _answer(scope: Scope, send: Send, status: int, detail: str) -> None:
    """JSON for the API, a short page otherwise; the connection closes after it, so an
    unread body is never read."""
    if scope["path"].startswith("/api/") or scope["path"] == "/metrics":
        body, kind = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        body = (f"<!doctype html><html><head><title>Error {status}</title></head><body>"
                f"<h1>Error {status}</h1><p>{html.escape(detail)}</p></body></html>").encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", location.encode()), (b"content-length", b"0"),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b""})
