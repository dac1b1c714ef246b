"""Firmware update on the web page: upload a signed bundle, then follow its install.

`POST /api/v1/update/upload?filename=NAME.raucb` takes the bundle as the raw request body
(no multipart: it is streamed to the data partition, never held in memory or in /tmp), with
the session's CSRF token in the X-CSRF-Token header as for every API call; the Operations
page sends it with XMLHttpRequest to show the upload's progress. The install itself runs as
root (`appliance update --request`); `GET /api/v1/update/status` shows its progress.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from appliance.web.security import api_action, api_login, client_address, context

log = logging.getLogger(__name__)

router = APIRouter(tags=["update"])
v1 = "/api/v1/update"

BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
ANSWERS = {code: {"description": why, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {"type": "string"}}}}}}
    for code, why in ((400, "not a bundle, empty or cut off"), (404, "no update service"),
                      (409, "an install is waiting or running"), (411, "length needed"),
                      (413, "too big"), (507, "not enough space"))}


def _firmware(request: Request):
    ctx = context(request)
    return ctx.require(ctx.providers.firmware, "the firmware update service")


@router.get(f"{v1}/status", dependencies=[Depends(api_login)])
def update_status(request: Request) -> dict[str, Any]:
    """The install's state and progress (status.json), whether an upload waits for the
    installer, and the last entries of the update history."""
    return _firmware(request).state()


@router.post(f"{v1}/upload", dependencies=[Depends(api_action)], status_code=202,
             openapi_extra=BODY, responses=ANSWERS)
async def upload(request: Request, filename: str = Query(min_length=1, max_length=255,
                                                         description="the bundle's file name "
                                                         "(must end in .raucb)")):
    """Upload a signed bundle (.raucb) as the raw body; the root installer takes it over.
    Answers 202 once it is stored; follow the install with GET /api/v1/update/status."""
    from appliance.update.web_provider import UploadRefused

    firmware = _firmware(request)
    length_header = request.headers.get("content-length")
    try:
        length = int(length_header) if length_header is not None else None
        if length is not None and length < 0:
            raise ValueError
    except ValueError:
        raise HTTPException(400, "the Content-Length header is not a number") from None
    try:
        answer = await firmware.receive(filename, length, request.stream())
    except UploadRefused as exc:
        log.warning("firmware upload %r from %s refused: %s", filename,
                    client_address(request), exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
    log.warning("firmware bundle %s uploaded from %s; install requested", answer["file"],
                client_address(request))
    return JSONResponse({"detail": f"{answer['file']} received ({answer['bytes']} bytes); "
                         "installing", **answer}, status_code=202)
