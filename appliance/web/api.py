"""The JSON API under /api/v1/ (the same operations as the pages) and /api/health.

Log in with POST /api/v1/login (or set the first password with POST /api/v1/setup); the answer
sets the session cookie and returns `csrf_token`, which every state-changing call sends back
in the X-CSRF-Token header.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from appliance.config import editor
from appliance.core.errors import ConfigError
from appliance.web import config_forms, downloads
from appliance.web.context import NotAvailable
from appliance.web.passwords import MAX_LENGTH, PasswordError
from appliance.web.rendering import set_session_cookie
from appliance.web.request_limits import IMPORT_LIMIT
from appliance.web.restore import MAX_CONFIG_BYTES, restore_config
from appliance.web.security import (
    api_action,
    api_login,
    api_status_access,
    client_address,
    context,
)
from appliance.web.sessions import COOKIE_NAME, Session
from appliance.web.setup_code import WRONG_SETUP_CODE

log = logging.getLogger(__name__)

router = APIRouter()
v1 = "/api/v1"
LOGIN = [Depends(api_login)]
ACTION = [Depends(api_action)]


class Password(BaseModel):
    password: str = Field(max_length=MAX_LENGTH)


class Setup(BaseModel):
    password: str = Field(max_length=MAX_LENGTH)
    setup_code: str = Field("", max_length=64, description="the one-time setup code: the "
                            "journal's 'web setup code:' line, the front panel or the serial "
                            "console's `status`")


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str = Field(max_length=MAX_LENGTH)


class ConfigChanges(BaseModel):
    """Keys as in `appliance config set` (`dicom.ae_title`, `peers[0].port`), values typed
    as in the TOML file."""

    changes: dict[str, Any] = Field(min_length=1, max_length=100)


class Problem(BaseModel):
    key: str
    reason: str


class Refused(BaseModel):
    detail: str
    problems: list[Problem] = []


class LoginAnswer(BaseModel):
    csrf_token: str


class EchoAnswer(BaseModel):
    peer: str
    ok: bool
    round_trip_ms: float | None
    reason: str
    text: str


class Message(BaseModel):
    detail: str


class Restore(BaseModel):
    toml: str = Field(max_length=MAX_CONFIG_BYTES)


class WorklistImport(BaseModel):
    format: str = Field(pattern="^(csv|json)$")
    data: str = Field(max_length=IMPORT_LIMIT)


def _refused(status: int, detail: str, exc: ConfigError) -> JSONResponse:
    problems = [{"key": k, "reason": r} for k, r in config_forms.split_problems(exc)]
    return JSONResponse({"detail": detail, "problems": problems}, status_code=status)


REFUSED = {422: {"model": Refused}}


@router.get("/api/health", tags=["monitoring"])
def health(request: Request) -> dict[str, Any]:
    """Component states, without login (for monitoring). 503 when unhealthy."""
    ctx = context(request)
    body = {"healthy": ctx.runtime.healthy, "components": ctx.health()}
    return JSONResponse(body, status_code=200 if body["healthy"] else 503)


# -- session ---------------------------------------------------------------------------------


def _start_session(request: Request, response: Response) -> LoginAnswer:
    ctx = context(request)
    old = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
    if old is not None:
        ctx.sessions.end(old.token)
    new = ctx.sessions.new(authenticated=True)
    set_session_cookie(request, response, new.token)
    return LoginAnswer(csrf_token=new.csrf)


def _too_many(wait: float) -> HTTPException:
    return HTTPException(429, f"too many failed attempts: try again in {wait:.0f} s",
                         headers={"Retry-After": str(int(wait) + 1)})


@router.post(f"{v1}/setup", tags=["session"], responses={
    400: {"model": Message}, 403: {"model": Message}, 409: {"model": Message},
    429: {"model": Message}})
def setup(request: Request, response: Response, body: Setup) -> LoginAnswer:
    """Set the first administrator password (only while none is set, with the one-time setup
    code the appliance shows on its front panel and logs) and log in."""
    ctx = context(request)
    client = client_address(request)
    if ctx.passwords.is_set():
        raise HTTPException(409, "the administrator password is already set")
    wait = ctx.limiter.begin(client)
    if wait > 0:
        raise _too_many(wait)
    if not ctx.setup_code.matches(body.setup_code):
        ctx.limiter.finish(client, ok=False)
        log.warning("first password refused from %s: wrong or missing setup code", client)
        raise HTTPException(403, WRONG_SETUP_CODE)
    ctx.limiter.finish(client, ok=True)
    try:
        ctx.set_first_password(body.password)
    except PasswordError as exc:
        raise HTTPException(400, str(exc)) from None
    log.warning("administrator password set through the API by %s", client)
    return _start_session(request, response)


@router.post(f"{v1}/login", tags=["session"], responses={401: {"model": Message},
                                                          429: {"model": Message}})
def login(request: Request, response: Response, body: Password) -> LoginAnswer:
    """Log in; sets the session cookie and returns the CSRF token."""
    ctx = context(request)
    client = client_address(request)
    if not ctx.passwords.is_set():
        raise HTTPException(401, "no administrator password is set yet (POST /api/v1/setup)")
    wait = ctx.limiter.begin(client)
    if wait > 0:
        raise _too_many(wait)
    ok = False
    try:
        ok = ctx.passwords.verify(body.password)
    finally:
        ctx.limiter.finish(client, ok=ok)
    if not ok:
        log.warning("failed API login from %s", client)
        raise HTTPException(401, "wrong password")
    return _start_session(request, response)


@router.post(f"{v1}/logout", tags=["session"], dependencies=ACTION)
def logout(request: Request) -> Message:
    context(request).sessions.end(request.cookies.get(COOKIE_NAME, ""))
    return Message(detail="logged out")


@router.post(f"{v1}/password", tags=["session"], responses={400: {"model": Message}})
def change_password(request: Request, body: PasswordChange,
                    session: Annotated[Session, Depends(api_action)]) -> Message:
    """Change the administrator password; every other session ends."""
    try:
        context(request).change_password(body.current_password, body.new_password,
                                         keep_session=session.token)
    except (PermissionError, PasswordError) as exc:
        raise HTTPException(400, str(exc)) from None
    return Message(detail="password changed")


# -- status and configuration ----------------------------------------------------------------


@router.get(f"{v1}/status", tags=["status"], dependencies=[Depends(api_status_access)])
def status(request: Request) -> dict[str, Any]:
    """What the dashboard shows."""
    return context(request).status()


@router.get(f"{v1}/access", tags=["status"], dependencies=LOGIN)
def access(request: Request) -> list[dict[str, Any]]:
    """Which doors of the box are open: each listening service, where it listens, who may come
    in and the configuration key that closes it."""
    return context(request).access()


@router.get(f"{v1}/config", tags=["configuration"], dependencies=LOGIN)
def get_config(request: Request) -> dict[str, Any]:
    """The running configuration (secrets masked)."""
    return context(request).config.model_dump(mode="json")


@router.get(f"{v1}/config/schema", tags=["configuration"], dependencies=LOGIN)
def config_schema() -> dict[str, Any]:
    """The JSON schema of the configuration: every field's `title`, `description` (its help)
    and, where it has one, `unit`."""
    from appliance.config.schema import ApplianceConfig

    return ApplianceConfig.model_json_schema()


@router.get(f"{v1}/config/labels", tags=["configuration"], dependencies=LOGIN)
def config_labels() -> dict[str, dict[str, str]]:
    """Every configuration key in words: {key: {"title", "help", "unit"}} (list entries as
    `peers[].port`), the labels the web forms and the front panel show."""
    from appliance.config.labels import schema_labels

    return schema_labels()


@router.patch(f"{v1}/config", tags=["configuration"], dependencies=ACTION, responses=REFUSED)
def patch_config(request: Request, body: ConfigChanges) -> dict[str, Any]:
    """Change values; all or nothing, validated by the schema, applied live."""
    ctx = context(request)
    try:
        new = editor.set_values(ctx.config_path(), body.changes)
    except ConfigError as exc:
        return _refused(422, "configuration refused, nothing changed", exc)
    ctx.applied(new)
    return new.model_dump(mode="json")


@router.get(f"{v1}/config/backup", tags=["configuration"], dependencies=LOGIN,
            response_class=PlainTextResponse)
def backup(request: Request):
    """The configuration file (TOML)."""
    return downloads.backup_response(request)


@router.post(f"{v1}/config/restore", tags=["configuration"], dependencies=ACTION,
             responses=REFUSED)
def restore(request: Request, body: Restore) -> Message:
    """Replace the configuration file by a backup; refused unless it validates."""
    ctx = context(request)
    try:
        ctx.applied(restore_config(ctx.config_path(), body.toml.encode("utf-8")))
    except ConfigError as exc:
        return _refused(422, "restore refused, nothing changed", exc)
    return Message(detail="configuration restored and applied")


@router.get(f"{v1}/peers", tags=["configuration"], dependencies=LOGIN)
def peers(request: Request) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in context(request).config.peers]


@router.post(f"{v1}/peers/{{name}}/echo", tags=["operations"], dependencies=ACTION,
             responses={404: {"model": Message}})
def echo_peer(request: Request, name: str) -> EchoAnswer:
    """C-ECHO a configured peer: the round-trip time, or why it failed."""
    result = context(request).echo_peer(name)
    return EchoAnswer(peer=name, ok=result.ok, round_trip_ms=result.round_trip_ms,
                      reason=result.reason, text=str(result))


# -- operations ------------------------------------------------------------------------------


@router.post(f"{v1}/identify", tags=["operations"], dependencies=ACTION)
def identify(request: Request) -> dict[str, float]:
    return {"seconds": context(request).identify()}


@router.post(f"{v1}/reboot", tags=["operations"], dependencies=ACTION)
def reboot(request: Request,
           confirm: Annotated[str, Body(embed=True, pattern="^reboot$")]) -> Message:
    """Reboot the box (send {"confirm": "reboot"})."""
    context(request).reboot()
    return Message(detail="rebooting")


@router.post(f"{v1}/factory-reset", tags=["operations"], dependencies=ACTION)
def factory_reset(request: Request,
                  confirm: Annotated[str, Body(embed=True, pattern="^reset$")]) -> Message:
    """Built-in configuration, no password (send {"confirm": "reset"}); images are kept."""
    context(request).factory_reset()
    return Message(detail="reset: set a new password at /setup")


@router.get(f"{v1}/logs", tags=["logs"], dependencies=LOGIN)
def logs(request: Request) -> list[str]:
    return context(request).log_names()


@router.get(f"{v1}/logs/{{name}}", tags=["logs"], dependencies=LOGIN,
            response_class=PlainTextResponse, responses={404: {"model": Message}})
def log_download(request: Request, name: str):
    """A log by name (one of GET /api/v1/logs)."""
    return downloads.log_download(request, name)


# -- services of other components (404 while they are not part of the appliance) ------------


def _queue(request: Request):
    ctx = context(request)
    return ctx.require(ctx.providers.queue, "the forward queue")


@router.get(f"{v1}/queue", tags=["queue"], dependencies=LOGIN)
def queue(request: Request) -> list[dict[str, Any]]:
    from dataclasses import asdict

    return [asdict(d) for d in _queue(request).destinations()]


@router.post(f"{v1}/queue/{{destination}}/{{action}}", tags=["queue"], dependencies=ACTION,
             responses={404: {"model": Message}})
def queue_action(request: Request, destination: str, action: str) -> dict[str, Any]:
    """hold, release or retry the queue of one destination."""
    provider = _queue(request)
    if action not in ("hold", "release", "retry"):
        raise HTTPException(404, f"no queue action {action!r} (hold, release, retry)")
    if destination not in [d.name for d in provider.destinations()]:
        raise NotAvailable(f"no destination {destination!r}")
    return {"destination": destination, "action": action,
            "result": getattr(provider, action)(destination)}


def _printing(request: Request):
    ctx = context(request)
    return ctx.require(ctx.providers.printing, "printing")


@router.get(f"{v1}/print/jobs", tags=["print"], dependencies=LOGIN)
def print_jobs(request: Request) -> list[dict[str, Any]]:
    from dataclasses import asdict

    return [asdict(j) for j in _printing(request).jobs(limit=100)]


@router.get(f"{v1}/print/jobs/{{job}}/preview", tags=["print"], dependencies=LOGIN,
            responses={404: {"model": Message}})
def print_preview(request: Request, job: str):
    return downloads.print_preview(request, job)


@router.post(f"{v1}/print/jobs/{{job}}/reprint", tags=["print"], dependencies=ACTION)
def reprint(request: Request, job: str) -> Message:
    _printing(request).reprint(job)
    return Message(detail=f"print job {job} queued again")


def _worklist(request: Request):
    ctx = context(request)
    return ctx.require(ctx.providers.worklist, "the worklist")


@router.get(f"{v1}/worklist", tags=["worklist"], dependencies=LOGIN)
def worklist(request: Request) -> list[dict[str, Any]]:
    return _worklist(request).items(limit=1000)


@router.post(f"{v1}/worklist", tags=["worklist"], dependencies=ACTION)
def worklist_add(request: Request, item: Annotated[dict[str, str], Body()]
                 ) -> dict[str, Any]:
    """Add one scheduled procedure step (DICOM keywords as keys). The answer has its id and
    notes saying what was stored other than as given (e.g. a date 2026-12-03 stored as
    20261203, a generated StudyInstanceUID); a value that does not fit its VR is refused
    (422) naming the attribute."""
    try:
        return _worklist(request).add(item)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post(f"{v1}/worklist/import", tags=["worklist"], dependencies=ACTION)
def worklist_import(request: Request, body: WorklistImport) -> dict[str, Any]:
    """Import a JSON or CSV file, all or nothing: {"imported": n, "notes": [...]}, or 422
    naming the item (or line), the attribute and the reason."""
    try:
        return _worklist(request).import_file(body.data.encode(), body.format)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.delete(f"{v1}/worklist/{{item_id}}", tags=["worklist"], dependencies=ACTION)
def worklist_delete(request: Request, item_id: str) -> Message:
    if not _worklist(request).delete(item_id):
        raise NotAvailable(f"no worklist item {item_id!r}")
    return Message(detail=f"worklist item {item_id} deleted")


@router.get(f"{v1}/mpps", tags=["worklist"], dependencies=LOGIN)
def mpps(request: Request, limit: int = 200) -> dict[str, Any]:
    """The MPPS procedure steps kept: counts by status, the `limit` most recently changed
    (1-1000) and the forward queue's depth per RIS peer."""
    ctx = context(request)
    provider = ctx.require(ctx.providers.mpps, "MPPS")
    if not 1 <= limit <= 1000:
        raise HTTPException(status_code=422, detail="limit must be between 1 and 1000")
    return {"counts": provider.counts(), "steps": provider.steps(limit=limit),
            "forward_pending": provider.forward_pending()}
