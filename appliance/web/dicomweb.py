"""The `/dicom-web/` routes: read-only DICOMweb (QIDO-RS search, WADO-RS retrieve, metadata and
rendered frames) over the instances the box holds, for a viewer on the ward.

Behind the web page's login (its session cookie) or an API token (`Authorization: Bearer`,
appliance.web.security.read_access). The work is done by appliance.dicomweb (qido, wado,
rendered) over the store the `dicomweb` provider opens; each refusal there carries its HTTP
status (400 bad parameter, 404 not held, 406 media type not offered, 503 storage stopped).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from appliance.dicomweb import qido, rendered, wado
from appliance.dicomweb.errors import DicomWebError, NotAcceptable
from appliance.web.security import context, read_access

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dicom-web", tags=["DICOMweb"], dependencies=[Depends(read_access)])
DICOM_JSON = "application/dicom+json"
MORE_RESULTS = ('299 appliance "The number of results exceeded the maximum supported by the '
                'server. Additional results can be requested."')


def _store(request: Request):
    provider = context(request).providers.dicomweb
    if provider is None:
        raise HTTPException(404, "DICOMweb is not part of this appliance")
    return provider.open()


def _guarded(work: Callable[[], Response]) -> Response:
    try:
        return work()
    except DicomWebError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _check_json_accept(request: Request) -> None:
    ranges = wado.media_ranges(request.headers.get("accept"))
    if not any(kind in ("*/*", "application/*", DICOM_JSON, "application/json")
               for kind, _ in ranges):
        raise NotAcceptable(f"this resource is offered only as {DICOM_JSON}")


def _json(data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False).encode("utf-8"),
                    media_type=DICOM_JSON, headers=headers)


# -- QIDO-RS ---------------------------------------------------------------------------------

def _search(request: Request, level: str, study: str | None = None,
            series: str | None = None) -> Response:
    def work() -> Response:
        _check_json_accept(request)
        query = qido.parse(level, request.query_params.multi_items(), study, series)
        db, root = _store(request)
        base = str(request.base_url).rstrip("/") + router.prefix
        answers, more = qido.search(db, root, query, base)
        warnings = query.warnings + ([MORE_RESULTS] if more else [])
        headers = {"Warning": ", ".join(warnings)} if warnings else None
        if not answers:
            return Response(status_code=204, headers=headers)
        return _json(answers, headers)
    return _guarded(work)


@router.get("/studies", summary="QIDO-RS: search for studies")
def search_studies(request: Request):
    return _search(request, "STUDY")


@router.get("/series", summary="QIDO-RS: search for series")
def search_series(request: Request):
    return _search(request, "SERIES")


@router.get("/instances", summary="QIDO-RS: search for instances")
def search_instances(request: Request):
    return _search(request, "IMAGE")


@router.get("/studies/{study}/series", summary="QIDO-RS: search for a study's series")
def search_study_series(request: Request, study: str):
    return _search(request, "SERIES", study)


@router.get("/studies/{study}/instances", summary="QIDO-RS: search for a study's instances")
def search_study_instances(request: Request, study: str):
    return _search(request, "IMAGE", study)


@router.get("/studies/{study}/series/{series}/instances",
            summary="QIDO-RS: search for a series' instances")
def search_series_instances(request: Request, study: str, series: str):
    return _search(request, "IMAGE", study, series)


# -- WADO-RS ---------------------------------------------------------------------------------

def _retrieve(request: Request, study: str, series: str | None = None,
              instance: str | None = None) -> Response:
    def work() -> Response:
        db, root = _store(request)
        found = wado.select(db, root, study, series, instance)
        wado.check_multipart_accept(request.headers.get("accept"), found)
        boundary = wado.new_boundary()
        log.info("WADO-RS: %d instances of study %s to %s", len(found), study,
                 request.client.host if request.client else "?")
        return StreamingResponse(
            wado.multipart(found, boundary),
            media_type=f'multipart/related; type="{wado.DICOM}"; boundary={boundary}')
    return _guarded(work)


def _metadata(request: Request, study: str, series: str | None = None,
              instance: str | None = None) -> Response:
    def work() -> Response:
        _check_json_accept(request)
        db, root = _store(request)
        return _json(wado.metadata(wado.select(db, root, study, series, instance)))
    return _guarded(work)


def _rendered(request: Request, study: str, series: str, instance: str, frame: str) -> Response:
    def work() -> Response:
        rendered.check_accept(wado.media_ranges(request.headers.get("accept")))
        if not frame.isdigit():
            raise HTTPException(400, f"frame {frame!r}: one frame number (from 1) is "
                                "rendered at a time")
        db, root = _store(request)
        found = wado.select(db, root, study, series, instance)
        return Response(rendered.render_png(found[0].path, int(frame)),
                        media_type=rendered.PNG)
    return _guarded(work)


@router.get("/studies/{study}", summary="WADO-RS: retrieve a study")
def retrieve_study(request: Request, study: str):
    return _retrieve(request, study)


@router.get("/studies/{study}/metadata", summary="WADO-RS: a study's metadata")
def study_metadata(request: Request, study: str):
    return _metadata(request, study)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
def retrieve_series(request: Request, study: str, series: str):
    return _retrieve(request, study, series)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: a series' metadata")
def series_metadata(request: Request, study: str, series: str):
    return _metadata(request, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}",
            summary="WADO-RS: retrieve an instance")
def retrieve_instance(request: Request, study: str, series: str, instance: str):
    return _retrieve(request, study, series, instance)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata",
            summary="WADO-RS: an instance's metadata")
def instance_metadata(request: Request, study: str, series: str, instance: str):
    return _metadata(request, study, series, instance)


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered",
            summary="WADO-RS: an instance's first frame as PNG")
def instance_rendered(request: Request, study: str, series: str, instance: str):
    return _rendered(request, study, series, instance, "1")


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
            summary="WADO-RS: one frame as PNG")
def frame_rendered(request: Request, study: str, series: str, instance: str, frame: str):
    return _rendered(request, study, series, instance, frame)
