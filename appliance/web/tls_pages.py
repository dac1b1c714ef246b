"""`POST /config/dicom/certificate`: a new DICOM TLS certificate and key from the web page (a
multipart form with the files `certificate` and, optionally, `private_key`, and the CSRF token).
The certificate itself is shown on `/config/dicom`; the checks and writes are in
`appliance.web.tls_certificate`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from appliance.web import tls_certificate
from appliance.web.pages import show_section
from appliance.web.security import client_address, context, page_action, session
from appliance.web.tls_certificate import MAX_PEM_BYTES, Upload, UploadRefused

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

ROUTE = "/config/dicom/certificate"


async def _upload(form, name: str, field: str) -> Upload | None:
    part = form.get(name)
    if not isinstance(part, UploadFile):
        return None
    data = await part.read(MAX_PEM_BYTES + 1)
    return tls_certificate.checked_size(field, part.filename or "", data)


@router.post(ROUTE, dependencies=[Depends(page_action)])
async def upload_certificate(request: Request):
    ctx = context(request)
    form = await request.form()
    try:
        certificate = await _upload(form, "certificate", "certificate")
        key = await _upload(form, "private_key", "private key")
        if certificate is None:
            raise UploadRefused("choose the certificate file (PEM) to upload")
        new, changed = await run_in_threadpool(
            tls_certificate.install, ctx.config, ctx.config_path(), certificate, key)
    except UploadRefused as exc:
        log.warning("DICOM TLS certificate upload from %s refused: %s",
                    client_address(request), exc)
        return show_section(request, "dicom", status_code=400, tls_error=str(exc))
    # Applied even when the file did not change (same paths): the reload is what makes the
    # running DICOM listener take the new files.
    ctx.applied(new)
    where = "" if changed else " (same files, new content)"
    session(request).flash.append(f"DICOM TLS certificate and key installed{where}; "
                                  "applied")
    return RedirectResponse("/config/dicom", status_code=303)
