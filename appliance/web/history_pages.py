"""The associations history page (`/associations`) and its API (`GET /api/v1/associations`),
and the per-minute statistics (`GET /api/v1/stats`). The filters travel in the query string,
so a filtered view can be bookmarked."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request

from appliance.web.association_history import OUTCOMES, SERVICES, AssociationFilter
from appliance.web.context import NotAvailable, WebContext
from appliance.web.rendering import render
from appliance.web.security import api_login, api_status_access, context, page_login
from appliance.web.stats import DEFAULT_MINUTES, MAX_MINUTES

log = logging.getLogger(__name__)

router = APIRouter()
TIME_FORMAT = "%Y-%m-%dT%H:%M"


def _time(name: str, text: str) -> float | None:
    """'2024-05-01T13:45' (local time, as an <input type=datetime-local> sends it)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).timestamp()
    except ValueError:
        raise HTTPException(400, f"{name} must be a local time like 2024-05-01T13:45, got "
                            f"{text!r}") from None


def _filter(calling_aet: str, outcome: str, service: str, since: str,
            until: str) -> AssociationFilter:
    if outcome and outcome not in OUTCOMES:
        raise HTTPException(400, f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if service and service not in SERVICES:
        raise HTTPException(400, f"service must be one of {', '.join(SERVICES)}, got "
                            f"{service!r}")
    return AssociationFilter(calling_aet.strip().upper(), outcome, service,
                             _time("since", since), _time("until", until))


def _history(ctx: WebContext):
    if ctx.history is None:
        raise NotAvailable("the associations history is not open (the web page is stopped)")
    return ctx.history


@router.get("/associations", include_in_schema=False, dependencies=[Depends(page_login)])
def associations_page(request: Request, calling_aet: str = "", outcome: str = "",
                      service: str = "", since: str = "", until: str = "", page: int = 1):
    """The DICOM associations, newest first, paged and filtered."""
    ctx = context(request)
    history = _history(ctx)
    found = history.search(_filter(calling_aet, outcome, service, since, until), page)
    query = {k: v for k, v in (("calling_aet", calling_aet), ("outcome", outcome),
                               ("service", service), ("since", since), ("until", until)) if v}

    def page_link(number: int) -> str:
        return "/associations?" + urlencode({**query, "page": number})

    return render(request, "associations.html", title="Associations", found=found,
                  query=query, page_link=page_link, outcomes=OUTCOMES, services=SERVICES,
                  calling_aets=history.calling_aets(), open_now=ctx.open_associations(),
                  now=time.time())


@router.get("/api/v1/associations", tags=["status"], dependencies=[Depends(api_login)])
def associations_api(request: Request, calling_aet: str = "", outcome: str = "",
                     service: str = "", since: str = "", until: str = "",
                     page: int = 1) -> dict[str, Any]:
    """The associations history, newest first, 50 a page; the same filters as the page
    (`since`/`until` in local time, YYYY-MM-DDTHH:MM)."""
    found = _history(context(request)).search(
        _filter(calling_aet, outcome, service, since, until), page)
    return {"total": found.total, "page": found.page, "pages": found.pages,
            "page_size": found.page_size, "associations": [asdict(r) for r in found.rows]}


@router.get("/api/v1/stats", tags=["status"], dependencies=[Depends(api_status_access)])
def stats_api(request: Request, minutes: int = DEFAULT_MINUTES) -> dict[str, Any]:
    """Per-minute series of the last `minutes` minutes (1 to 7 days' worth), oldest first:
    `received` (images stored), `forwarded` (images delivered, per destination),
    `queue_depth` (instances waiting, per destination; null where not sampled) and
    `disk_used_percent` (null where not sampled); `start` is the first minute (epoch
    seconds), `step_seconds` 60."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise HTTPException(400, f"minutes must be between 1 and {MAX_MINUTES}, got {minutes}")
    return context(request).series(minutes)
