"""The operations pages: logs, configuration backup and restore, identify, reboot, factory
reset, password change, and the forward queue, print jobs and worklist when those services
are part of the appliance."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from appliance.core.errors import ConfigError
from appliance.web import downloads
from appliance.web.context import NotAvailable
from appliance.web.log_view import LEVELS, MAX_PAGE_LINES, PAGE_LINES, LogQuery, level_name
from appliance.web.passwords import PasswordError
from appliance.web.rendering import render
from appliance.web.restore import MAX_CONFIG_BYTES, restore_config
from appliance.web.security import context, page_action, page_login, session

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

STUCK_SHOWN = 20   # stuck instances per destination on the queue page
STUCK_PAGE = 100   # on a destination's own instances page


def _done(request: Request, message: str, where: str = "/operations"):
    session(request).flash.append(message)
    return RedirectResponse(where, status_code=303)


@router.get("/operations", dependencies=[Depends(page_login)])
def operations(request: Request):
    return render(request, "operations.html", title="Operations",
                  identify_seconds=context(request).config.hal.leds.identify_seconds)


@router.post("/operations/identify", dependencies=[Depends(page_action)])
def identify(request: Request):
    seconds = context(request).identify()
    return _done(request, f"identify: the LEDs blink for {seconds:g} s")


@router.post("/operations/reboot", dependencies=[Depends(page_action)])
async def reboot(request: Request):
    form = await request.form()
    if form.get("confirm") != "reboot":
        return _done(request, "reboot not confirmed: tick the box to confirm")
    context(request).reboot()
    return render(request, "message.html", title="Rebooting",
                  message="The appliance restarts now; this page is back in about a minute.")


@router.post("/operations/factory-reset", dependencies=[Depends(page_action)])
async def factory_reset(request: Request):
    form = await request.form()
    if form.get("confirm") != "reset":
        return _done(request, "factory reset not confirmed: type 'reset' to confirm")
    context(request).factory_reset()
    return RedirectResponse("/setup", status_code=303)


@router.post("/operations/password", dependencies=[Depends(page_action)])
async def change_password(request: Request):
    form = await request.form()
    new, again = str(form.get("new_password", "")), str(form.get("new_password_again", ""))
    if new != again:
        return _error(request, "the two new passwords differ")
    try:
        context(request).change_password(str(form.get("current_password", "")), new,
                                         keep_session=session(request).token)
    except (PermissionError, PasswordError) as exc:
        return _error(request, str(exc))
    return _done(request, "password changed; every other session was logged out")


def _error(request: Request, message: str):
    return render(request, "operations.html", status_code=400, title="Operations",
                  error=message,
                  identify_seconds=context(request).config.hal.leds.identify_seconds)


@router.get("/operations/backup", dependencies=[Depends(page_login)])
def backup(request: Request):
    return downloads.backup_response(request)



@router.post("/operations/restore", dependencies=[Depends(page_action)])
async def restore(request: Request):
    ctx = context(request)
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return _error(request, "choose a configuration file to restore")
    data = await upload.read(MAX_CONFIG_BYTES + 1)
    try:
        ctx.applied(restore_config(ctx.config_path(), data))
    except ConfigError as exc:
        return _error(request, "restore refused, nothing changed: " + "; ".join(exc.problems))
    return _done(request, "configuration restored and applied")


# -- logs ------------------------------------------------------------------------------------


@router.get("/logs", dependencies=[Depends(page_login)])
def logs(request: Request, name: str = "appliance.log", level: str = "", q: str = "",
         offset: int = 0, limit: int = PAGE_LINES):
    """Newest first (what a technician looks for), filtered by level and text; "show more"
    asks for a longer page, "older" for the next one once a page is as long as it gets."""
    ctx = context(request)
    if level not in LEVELS:
        level = ""
    query = LogQuery(level=level, search=q.strip()[:200], offset=max(0, offset),
                     limit=min(max(1, limit), MAX_PAGE_LINES))
    page = ctx.read_log(name, query)
    return render(request, "logs.html", title="Logs", names=ctx.log_names(), name=name,
                  page=page, query=query, levels=list(LEVELS), level_name=level_name,
                  page_lines=PAGE_LINES, max_page_lines=MAX_PAGE_LINES)


@router.get("/logs/{name}/download", dependencies=[Depends(page_login)])
def log_download(request: Request, name: str):
    return downloads.log_download(request, name)



# -- services of other components ------------------------------------------------------------


@router.get("/queue", dependencies=[Depends(page_login)])
def queue(request: Request):
    ctx = context(request)
    provider = ctx.require(ctx.providers.queue, "the forward queue")
    commitment = ctx.providers.commitment
    destinations = provider.destinations()
    return render(request, "queue.html", title="Forward queue", destinations=destinations,
                  stuck={d.name: provider.instances(d.name, limit=STUCK_SHOWN)
                         for d in destinations}, now=time.time(),
                  commitments=None if commitment is None else commitment.transactions())


@router.get("/queue/{destination}/instances", dependencies=[Depends(page_login)])
def queue_instances(request: Request, destination: str, offset: int = 0):
    """All stuck instances of one destination, a page of STUCK_PAGE at a time."""
    ctx = context(request)
    provider = ctx.require(ctx.providers.queue, "the forward queue")
    if destination not in [d.name for d in provider.destinations()]:
        raise NotAvailable(f"no destination {destination!r}")
    offset = max(0, offset)
    rows, total = provider.instances(destination, limit=STUCK_PAGE, offset=offset)
    return render(request, "queue_instances.html", title=f"Stuck instances: {destination}",
                  destination=destination, rows=rows, total=total, offset=offset,
                  page=STUCK_PAGE, now=time.time())


@router.post("/queue/{destination}/instances/{action}", dependencies=[Depends(page_action)])
async def queue_instance_action(request: Request, destination: str, action: str):
    """Retry (due now) or skip (given up, failed) one instance: form field `uid`."""
    ctx = context(request)
    provider = ctx.require(ctx.providers.queue, "the forward queue")
    if action not in ("retry", "skip"):
        raise HTTPException(404, f"no instance action {action!r} (retry, skip)")
    form = await request.form()
    uid = str(form.get("uid", "")).strip()
    getattr(provider, f"{action}_instance")(destination, uid)
    done = "is sent again now" if action == "retry" else "skipped (marked failed, not sent)"
    back = str(form.get("back", ""))
    return _done(request, f"{destination}: {uid} {done}",
                 back if back.startswith("/queue") else "/queue")


@router.post("/queue/{destination}/{action}", dependencies=[Depends(page_action)])
def queue_action(request: Request, destination: str, action: str):
    ctx = context(request)
    provider = ctx.require(ctx.providers.queue, "the forward queue")
    if action not in ("hold", "release", "retry"):
        raise HTTPException(404, f"no queue action {action!r} (hold, release, retry)")
    if destination not in [d.name for d in provider.destinations()]:
        raise NotAvailable(f"no destination {destination!r}")
    result = getattr(provider, action)(destination)
    extra = f" ({result} instances)" if action == "retry" else ""
    return _done(request, f"{destination}: {action}{extra}", "/queue")


@router.get("/print", dependencies=[Depends(page_login)])
def print_jobs(request: Request):
    ctx = context(request)
    provider = ctx.require(ctx.providers.printing, "printing")
    return render(request, "print.html", title="Print jobs", printers=provider.printers(),
                  jobs=provider.jobs(limit=100))


@router.get("/print/{job}/preview.png", dependencies=[Depends(page_login)])
def print_preview(request: Request, job: str):
    return downloads.print_preview(request, job)



@router.post("/print/{job}/reprint", dependencies=[Depends(page_action)])
def reprint(request: Request, job: str):
    ctx = context(request)
    ctx.require(ctx.providers.printing, "printing").reprint(job)
    return _done(request, f"print job {job} queued again", "/print")


@router.get("/worklist", dependencies=[Depends(page_login)])
def worklist(request: Request):
    ctx = context(request)
    provider = ctx.require(ctx.providers.worklist, "the worklist")
    mpps = ctx.providers.mpps
    return render(request, "worklist.html", title="Worklist", counts=provider.counts(),
                  sources=provider.sources(), items=provider.items(limit=200),
                  mpps_counts=mpps.counts() if mpps else None,
                  mpps_steps=mpps.steps(limit=50) if mpps else [],
                  mpps_forward=mpps.forward_pending() if mpps else {})


@router.post("/worklist/import", dependencies=[Depends(page_action)])
async def worklist_import(request: Request):
    ctx = context(request)
    provider = ctx.require(ctx.providers.worklist, "the worklist")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return _done(request, "choose a CSV or JSON file to import", "/worklist")
    fmt = "json" if (upload.filename or "").lower().endswith(".json") else "csv"
    try:
        # Read as it goes, off the event loop (a large file takes a while to check).
        result = await run_in_threadpool(provider.import_file, upload.file, fmt)
    except ValueError as exc:
        return _done(request, f"import refused: {exc}", "/worklist")
    return _done(request, "; ".join([f"imported {result['imported']} items",
                                     *result["notes"]]), "/worklist")


WORKLIST_FORM_KEYS = ("PatientName", "PatientID", "AccessionNumber", "Modality",
                      "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
                      "ScheduledStationAETitle", "RequestedProcedureDescription")


@router.post("/worklist/add", dependencies=[Depends(page_action)])
async def worklist_add(request: Request):
    ctx = context(request)
    provider = ctx.require(ctx.providers.worklist, "the worklist")
    form = await request.form()
    item = {key: str(form.get(key, "")).strip() for key in WORKLIST_FORM_KEYS
            if str(form.get(key, "")).strip()}
    try:
        added = provider.add(item)
    except ValueError as exc:
        return _done(request, f"item refused: {exc}", "/worklist")
    return _done(request, "; ".join([f"worklist item {added['id']} added", *added["notes"]]),
                 "/worklist")


@router.post("/worklist/{item_id}/delete", dependencies=[Depends(page_action)])
def worklist_delete(request: Request, item_id: str):
    ctx = context(request)
    if not ctx.require(ctx.providers.worklist, "the worklist").delete(item_id):
        raise NotAvailable(f"no worklist item {item_id!r}")
    return _done(request, f"worklist item {item_id} deleted", "/worklist")

