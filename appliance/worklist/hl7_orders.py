"""HL7 v2 orders (ORM^O01, OMI^O23) into worklist items, and the ACK for each message.

The order control code (ORC-1) says what to do: NW creates (or refreshes) an item, XO and SC
update it, CA/OC/CR cancel it, DC/OD discontinue it (SC with order status CM completes it).
Where each DICOM attribute comes from is the field map: `DEFAULT_FIELD_MAP` overridden by
`[worklist.hl7] field_map`. Every message gets an ACK: AA when applied, AE (application error,
e.g. a missing segment or value, nothing stored) or AR (rejected: not an order message, an
unsupported version, unreadable) with the reason in MSA-3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import hl7
from pydicom.datadict import dictionary_VR

from appliance.worklist.hl7_acks import acknowledgement
from appliance.worklist.item import ItemError, element, items_from_dataset, tag_of
from appliance.worklist.keys import SPS_ITEM
from appliance.worklist.store import CANCELLED, COMPLETED, DISCONTINUED, WorklistStore

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")
SUPPORTED_TYPES = {("ORM", "O01"), ("OMI", "O23")}
SOURCE = "hl7"

DEFAULT_FIELD_MAP = {
    "PatientID": "PID.3.1",
    "IssuerOfPatientID": "PID.3.4",
    "PatientName": "PID.5",
    "PatientBirthDate": "PID.7",
    "PatientSex": "PID.8",
    "CurrentPatientLocation": "PV1.3",
    "ReferringPhysicianName": "PV1.8",
    "AdmissionID": "PV1.19",
    "PlacerOrderNumberImagingServiceRequest": "ORC.2.1",
    "FillerOrderNumberImagingServiceRequest": "ORC.3.1",
    "RequestedProcedureDescription": "OBR.4.2",
    "ScheduledProcedureStepDescription": "OBR.4.2",
    "RequestingPhysician": "OBR.16",
    "AccessionNumber": "OBR.18",
    "RequestedProcedureID": "OBR.19",
    "ScheduledProcedureStepID": "OBR.20",
    "ScheduledStationAETitle": "OBR.21",
    "Modality": "OBR.24",
    "ScheduledProcedureStepStartDate": "OBR.27.4",
    "ScheduledProcedureStepStartTime": "OBR.27.4",
    "ReasonForTheRequestedProcedure": "OBR.31",
    "ScheduledPerformingPhysicianName": "OBR.34",
    "StudyInstanceUID": "ZDS.1.1",
}
#: Where the start date/time is looked for when the mapped field is empty (v2.5 OMI: TQ1-7).
START_FALLBACKS = ("TQ1.7.1", "ORC.7.4", "ORC.9")
#: Fields of type XCN/CNN: component 1 is an ID, the name starts at component 2.
ID_FIRST_FIELDS = {"PV1.7", "PV1.8", "PV1.9", "PV1.17", "OBR.16", "OBR.32", "OBR.33",
                   "OBR.34", "OBR.35", "ORC.10", "ORC.11", "ORC.12"}
ORDER_SEGMENTS = ("ORC", "OBR", "TQ1")


class Hl7Reject(Exception):
    """Raised while handling a message: `code` is AE or AR, the message the reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass
class Hl7Outcome:
    code: str
    text: str


class OrderFeeder:
    """Applies HL7 order messages to the worklist store."""

    def __init__(self, store: WorklistStore, field_map: dict[str, str] | None = None):
        self.store = store
        self.field_map = {**DEFAULT_FIELD_MAP, **(field_map or {})}

    def handle_text(self, text: str) -> tuple[str, Hl7Outcome]:
        """Handle one message; return (ACK message text, outcome). Never raises."""
        text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
        try:
            message = hl7.parse(text)
            message.segment("MSH")
            if not text.startswith("MSH"):
                raise ValueError("does not start with MSH")
        except Exception as exc:
            outcome = Hl7Outcome("AR", f"not an HL7 v2 message: {exc or type(exc).__name__}")
            return acknowledgement(text, outcome.code, outcome.text), outcome
        try:
            outcome = Hl7Outcome("AA", self.apply(message))
        except Hl7Reject as exc:
            outcome = Hl7Outcome(exc.code, str(exc))
        except Exception as exc:  # a store failure: tell the sender to try again
            log.exception("HL7 message could not be applied")
            outcome = Hl7Outcome("AE", f"internal error: {exc}")
        return acknowledgement(text, outcome.code, outcome.text, message), outcome

    def apply(self, message: hl7.Message) -> str:
        msh = message.segment("MSH")
        version = str(_get(msh, 12)).split("^")[0]
        if version not in SUPPORTED_VERSIONS:
            raise Hl7Reject("AR", f"unsupported HL7 version {version!r} (supported: "
                            f"{', '.join(SUPPORTED_VERSIONS)})")
        kind = str(_get(msh, 9)).split("^")
        kind_pair = (kind[0], kind[1] if len(kind) > 1 else "")
        if kind_pair not in SUPPORTED_TYPES:
            raise Hl7Reject("AR", f"unsupported message type {'^'.join(kind[:2])!r} "
                            "(accepted: ORM^O01, OMI^O23)")
        for name in ("PID", "ORC", "OBR"):
            if not _segments(message, name):
                raise Hl7Reject("AE", f"required segment {name} is missing")
        orders = _segments(message, "ORC")
        requests = _segments(message, "OBR")
        if len(orders) != len(requests):
            raise Hl7Reject("AE", f"{len(orders)} ORC but {len(requests)} OBR segments: each "
                            "order needs one of each")
        results = [self._apply_order(message, i) for i in range(len(orders))]
        return "; ".join(results)

    def _apply_order(self, message: hl7.Message, index: int) -> str:
        code = self._value(message, "ORC.1", index).upper()
        data = self._dataset(message, index)
        accession = data.get(tag_of("AccessionNumber"), {}).get("Value", [""])[0]
        if code in ("NW", "XO", "SC"):
            status = self._value(message, "ORC.5", index).upper()
            if code == "SC" and status in ("CM", "CA", "DC"):
                new = {"CM": COMPLETED, "CA": CANCELLED, "DC": DISCONTINUED}[status]
                return self._finish(accession, new)
            try:
                items = items_from_dataset(data, "order")
            except ItemError as exc:
                raise Hl7Reject("AE", self._located(str(exc).replace("order: ", "", 1))) \
                    from None
            created, updated = self.store.put(items, SOURCE)
            return (f"{code}: accession {accession or '-'}: {created} created, "
                    f"{updated} updated")
        if code in ("CA", "OC", "CR"):
            return self._finish(accession, CANCELLED)
        if code in ("DC", "OD"):
            return self._finish(accession, DISCONTINUED)
        raise Hl7Reject("AE", f"unsupported order control code {code!r} (accepted: NW, XO, SC, "
                        "CA, OC, CR, DC, OD)")

    def _located(self, reason: str) -> str:
        """The reason with the HL7 field the refused attribute came from."""
        keyword = reason.split(" ", 1)[0].rstrip(":")
        location = self.field_map.get(keyword)
        return f"{location} ({reason})" if location else reason

    def _finish(self, accession: str, status: str) -> str:
        if not accession:
            raise Hl7Reject("AE", f"cannot mark an order {status.lower()}: no accession number")
        count = self.store.set_status("accession_number = ?", (accession,), status)
        if not count:
            raise Hl7Reject("AE", f"no scheduled item with accession number {accession!r}")
        return f"accession {accession}: {count} item(s) {status.lower()}"

    def _dataset(self, message: hl7.Message, index: int) -> dict:
        top, sps = {}, {}
        for keyword, location in self.field_map.items():
            if not location:
                continue
            value = self._converted(message, keyword, location, index)
            target = sps if keyword in SPS_ITEM else top
            tag, elem = element(keyword, value)
            target[tag] = elem
        top[tag_of("ScheduledProcedureStepSequence")] = {"vr": "SQ", "Value": [sps]}
        return top

    def _converted(self, message: hl7.Message, keyword: str, location: str, index: int) -> str:
        vr = dictionary_VR(keyword)
        parts = location.split(".")
        if vr == "PN" and len(parts) == 2:
            comps = self._components(message, parts[0], int(parts[1]), index)
            if location in ID_FIRST_FIELDS:
                comps = comps[1:]
            comps = [message.unescape(c.split("&")[0]).strip() for c in comps]
            family, given, middle, suffix, prefix = (comps + [""] * 5)[:5]
            return "^".join([family, given, middle, prefix, suffix]).rstrip("^")
        value = self._value(message, location, index)
        if keyword.startswith("ScheduledProcedureStepStart") and not value:
            for fallback in START_FALLBACKS:
                value = self._value(message, fallback, index)
                if value:
                    break
        if vr == "DA":
            return value[:8]
        if vr == "TM":
            return value[8:14] if len(value) > 8 else ""
        return value.replace("\\", "/").strip()

    def _components(self, message: hl7.Message, seg: str, field: int, index: int) -> list[str]:
        segments = _segments(message, seg)
        if not segments:
            return []
        segment = segments[min(index, len(segments) - 1)] if seg in ORDER_SEGMENTS \
            else segments[0]
        raw = str(_get(segment, field))
        first = raw.split("~")[0]
        return first.split("^")

    def _value(self, message: hl7.Message, location: str, index: int) -> str:
        parts = [int(p) if p.isdigit() else p for p in location.split(".")]
        comps = self._components(message, parts[0], parts[1], index)
        component = parts[2] if len(parts) > 2 else 1
        subcomponent = parts[3] if len(parts) > 3 else 1
        if component > len(comps):
            return ""
        subs = comps[component - 1].split("&")
        return message.unescape(subs[subcomponent - 1]).strip() if subcomponent <= len(subs) \
            else ""


def _segments(message: hl7.Message, name: str) -> list:
    return [seg for seg in message if str(seg[0]) == name]


def _get(segment, field: int) -> str:
    # The hl7 package keeps MSH-1 (the field separator) as an element, so index n is field n
    # for every segment.
    return str(segment[field]) if field < len(segment) else ""
