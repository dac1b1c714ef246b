"""WADO-RS (PS3.18 10.4) over the local store: which instances a study, series or instance
path names, their files as stored in a multipart/related answer, and their metadata as DICOM
JSON.

Instances are sent byte for byte as the box stored them (never transcoded): each part is
`application/dicom` with the stored transfer syntax as its `transfer-syntax` parameter. An
Accept header that asks only for other media types, or only for another transfer syntax, is a
`NotAcceptable`. Metadata is each instance's data set without its bulk data: Pixel Data and any
other binary value over 1 KiB are left out (no BulkDataURI is offered).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom import dcmread

from appliance.dicomweb.errors import NotAcceptable, NotFound
from appliance.query.records import Row, held, rows

log = logging.getLogger(__name__)

DICOM = "application/dicom"
CHUNK = 64 * 1024
BULK_DATA_THRESHOLD = 1024
_LEFT_OUT = "bulk data left out"


def select(db, root: Path, study: str, series: str | None = None,
           instance: str | None = None) -> list[Row]:
    """The held instances of a study, series or instance, or NotFound naming what is not."""
    where = {"study_uid": [study]}
    what = f"study {study}"
    if series is not None:
        where["series_uid"] = [series]
        what = f"series {series} in {what}"
    if instance is not None:
        where["sop_instance_uid"] = [instance]
        what = f"instance {instance} in {what}"
    found = held(rows(db, root, where))
    if not found:
        raise NotFound(f"no {what} is held on this box")
    return found


def media_ranges(accept: str | None) -> list[tuple[str, dict[str, str]]]:
    """An Accept header as (type/subtype, parameters) pairs; none given is `*/*`."""
    out = []
    for item in (accept or "*/*").split(","):
        kind, *params = [p.strip() for p in item.split(";")]
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        if kind:
            out.append((kind.lower(), values))
    return out or [("*/*", {})]


def check_multipart_accept(accept: str | None, found: list[Row]) -> None:
    """The client takes multipart/related; type="application/dicom" in the transfer syntaxes
    the instances are stored in, or NotAcceptable."""
    stored = {row.transfer_syntax for row in found}
    for kind, params in media_ranges(accept):
        if kind not in ("*/*", "multipart/*", "multipart/related"):
            continue
        if params.get("type", DICOM).lower() not in (DICOM, "*/*", "application/*"):
            continue
        syntax = params.get("transfer-syntax", "*")
        if syntax == "*" or stored == {syntax}:
            return
    raise NotAcceptable(
        f'only multipart/related; type="{DICOM}" is offered, in the transfer syntax each '
        f"instance is stored in ({', '.join(sorted(stored))}); the box does not transcode")


def new_boundary() -> str:
    return secrets.token_hex(16)


def multipart(found: list[Row], boundary: str) -> Iterator[bytes]:
    """The multipart/related body: each instance's file as stored, read as it is sent."""
    for row in found:
        size = Path(row.path).stat().st_size
        yield (f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={row.transfer_syntax}"
               f"\r\nContent-Length: {size}\r\n\r\n").encode("ascii")
        with open(row.path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def metadata(found: list[Row]) -> list[dict[str, Any]]:
    """Each instance's data set as DICOM JSON, bulk data left out."""
    out = []
    for row in found:
        ds = dcmread(row.path, stop_before_pixels=True)
        data = ds.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD,
                               bulk_data_element_handler=lambda _element: _LEFT_OUT)
        out.append(_without_bulk(data))
    return out


def _without_bulk(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for tag, element in data.items():
        if element.get("BulkDataURI") == _LEFT_OUT:
            continue
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_without_bulk(item) for item in element["Value"]]}
        out[tag] = element
    return out
