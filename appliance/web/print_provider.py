"""The web page's view of the print spool (`PrintProvider`): printers with their status, the
job history, a job's film preview, and reprint."""

from __future__ import annotations

import logging

from appliance.core.providers import PrinterState, PrintJobInfo
from appliance.print.profiles import printer_profiles
from appliance.print.spool import JobNotFound, PrintSpool, QueueFull
from appliance.web import timefmt
from appliance.web.context import NotAvailable

log = logging.getLogger(__name__)


class SpoolPrintProvider:
    def __init__(self, spool: PrintSpool):
        self.spool = spool

    def printers(self) -> list[PrinterState]:
        names = [p.name for p in printer_profiles(self.spool.config)]
        out = []
        for name in names:
            state = self.spool.printer_state(name)
            detail = f"{state.info}: {state.detail}" if state.detail else state.info
            out.append(PrinterState(name=name, state=state.status.lower(), info=detail))
        return out

    def jobs(self, limit: int = 50) -> list[PrintJobInfo]:
        if self.spool.db is None:
            return []
        return [PrintJobInfo(
            id=job["uid"],
            created=timefmt.iso(job["created"]),
            state=job["status"].lower(), printer=job["printer"], films=job["films"],
            detail=_detail(job), number=job["number"], film_size=job["film_size"])
            for job in self.spool.jobs(limit)]

    def preview(self, job_id: str) -> bytes | None:
        return self.spool.preview(job_id)

    def reprint(self, job_id: str) -> None:
        try:
            uid = self.spool.reprint(job_id)
        except JobNotFound as exc:
            raise NotAvailable(str(exc)) from None
        except QueueFull as exc:
            from fastapi import HTTPException  # only the web page calls this: FastAPI is loaded
            raise HTTPException(503, f"cannot reprint: {exc}") from None
        log.info("print job %s reprinted from the web page as %s", job_id, uid)


def _detail(job: dict) -> str:
    parts = []
    if job["calling_aet"]:
        parts.append(f"from {job['calling_aet']}")
    if job["copies"] > 1:
        parts.append(f"{job['copies']} copies")
    if job["status"] == "FAILURE" and job["status_info"]:
        parts.append(job["status_info"])
    return ", ".join(parts)
