"""What the pages and the JSON API both hand out as a download: the configuration backup, a log
file, a print job's preview."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from appliance.web.context import NotAvailable
from appliance.web.restore import read_backup
from appliance.web.security import context


def backup_response(request: Request) -> Response:
    ctx = context(request)
    text = read_backup(ctx.config_path(), ctx.config)
    name = f"{ctx.config.device.name}-appliance.toml"
    return PlainTextResponse(text, media_type="application/toml", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def log_download(request: Request, name: str) -> Response:
    text = context(request).log_text(name)
    return PlainTextResponse(text, headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def print_preview(request: Request, job: str) -> Response:
    ctx = context(request)
    png = ctx.require(ctx.providers.printing, "printing").preview(job)
    if png is None:
        raise NotAvailable(f"no preview of print job {job!r}")
    return Response(png, media_type="image/png")
