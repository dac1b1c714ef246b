"""The DICOM services' pynetdicom-style handlers served by the native engine: the engine's
`on_request(request, data_set)` for C-FIND, C-GET, C-MOVE, the DIMSE-N requests and an
N-EVENT-REPORT from the peer, and its association events (C-GET/C-MOVE: `engine_retrieve.py`).

The services (worklist, print, ...) bind handlers to pynetdicom events (`evt.EVT_C_FIND`,
`evt.EVT_N_SET`, ...) and read a small part of pynetdicom's `Event`: the request primitive, the
decoded identifier or attribute list, the presentation context and a few things of the
association. `EngineDispatcher` looks up the handler for each request the engine passes up,
gives it an `EngineEvent` with just those parts (a real pynetdicom request primitive, data sets
decoded with pydicom on first use, an `EngineAssociation` per association), and turns the
handler's answers into the engine's `(status, data set bytes or None, fields)` tuples, the way
pynetdicom's service classes turn them into responses. The association's end (release, abort
or a dropped connection: the engine reports one "ended") goes to the services'
EVT_RELEASED/EVT_ABORTED/EVT_CONN_CLOSE handlers, each called once.

The services are passed in: this module knows no service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from io import BytesIO
from types import SimpleNamespace

from pydicom import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.dimse_primitives import (
    C_FIND,
    C_GET,
    C_MOVE,
    N_ACTION,
    N_CREATE,
    N_DELETE,
    N_EVENT_REPORT,
    N_GET,
    N_SET,
)
from pynetdicom.dsutils import decode, encode
from pynetdicom.presentation import PresentationContext, PresentationContextTuple

from appliance.dicom.dimse_status import PENDING, is_success_or_warning
from appliance.dicom.engine_retrieve import GET_FAILED, MOVE_FAILED, get_answers, move_answers

log = logging.getLogger(__name__)

#: The engine's request names and the pynetdicom event their handler is bound to.
COMMAND_EVENTS = {"C-FIND-RQ": evt.EVT_C_FIND, "C-GET-RQ": evt.EVT_C_GET,
                  "C-MOVE-RQ": evt.EVT_C_MOVE, "N-CREATE-RQ": evt.EVT_N_CREATE,
                  "N-SET-RQ": evt.EVT_N_SET, "N-GET-RQ": evt.EVT_N_GET,
                  "N-ACTION-RQ": evt.EVT_N_ACTION, "N-DELETE-RQ": evt.EVT_N_DELETE,
                  "N-EVENT-REPORT-RQ": evt.EVT_N_EVENT_REPORT}
#: The failure status when no handler is bound or the handler fails before answering.
FAILED_STATUS = {"C-FIND-RQ": 0xC000, "C-GET-RQ": GET_FAILED, "C-MOVE-RQ": MOVE_FAILED}
#: Events that mean "this association is over"; the engine reports its end once.
ENDING_EVENTS = (evt.EVT_RELEASED, evt.EVT_ABORTED, evt.EVT_CONN_CLOSE)
C_FIND_FAILED = 0xC000          # unable to process
N_FAILED = 0x0110               # processing failure


class EventOutcomes:
    """The callbacks waiting for the outcome of N-EVENT-REPORTs sent with `on_outcome`, by
    the tag the engine gives back in its "event_outcome" association event."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, Callable[[bool, int], None]] = {}

    def register(self, callback: Callable[[bool, int], None]) -> int:
        with self._lock:
            self._next += 1
            self._waiting[self._next] = callback
            return self._next

    def pop(self, tag: int) -> Callable[[bool, int], None] | None:
        with self._lock:
            return self._waiting.pop(tag, None)


class EngineAssociation:
    """What handlers read of an association (pynetdicom `Association`'s names), plus
    `association_id` and `send_event` for N-EVENT-REPORTs through the engine."""

    def __init__(self, association_id: int, calling_ae: str, called_ae: str, peer: str,
                 contexts: Iterable[tuple[int, str, str]], dimse_timeout: float | None,
                 send: Callable[..., bool] | None, outcomes: EventOutcomes | None = None):
        self.association_id = association_id
        host, _, port = peer.rpartition(":")
        self.requestor = SimpleNamespace(ae_title=calling_ae, address=host or peer,
                                         port=int(port) if port.isdigit() else None)
        self.acceptor = SimpleNamespace(ae_title=called_ae)
        self._contexts = list(contexts)
        self.dimse_timeout = dimse_timeout
        self.is_established = True
        self._send = send
        self._outcomes = outcomes

    @cached_property
    def accepted_contexts(self) -> list[PresentationContext]:
        """pynetdicom's contexts, built when a handler first asks (every association has a
        view, most never need these: 40 % of the Python work per association)."""
        accepted = []
        for context_id, abstract_syntax, transfer_syntax in self._contexts:
            context = PresentationContext()
            context.context_id = context_id
            context.abstract_syntax = abstract_syntax
            context.add_transfer_syntax(transfer_syntax)
            context.result = 0x00
            accepted.append(context)
        return accepted

    def context(self, context_id: int) -> PresentationContext | None:
        return next((cx for cx in self.accepted_contexts if cx.context_id == context_id), None)

    def send_event(self, abstract_syntax: str, sop_class_uid: str, sop_instance_uid: str,
                   event_type_id: int, information: Dataset | None,
                   on_outcome: Callable[[bool, int], None] | None = None) -> bool:
        """Queue an N-EVENT-REPORT to the peer on the context of `abstract_syntax`, Event
        Information encoded in that context's transfer syntax. False when the association
        is over or has no such context. `on_outcome(delivered, status)` is called once, from
        the association's thread, when the peer answered it (True, its status) or when the
        association ended before it was sent or answered (False, -1)."""
        context = next((cx for cx in self.accepted_contexts
                        if cx.abstract_syntax == abstract_syntax), None)
        if context is None or not self.is_established or self._send is None:
            return False
        syntax = context.transfer_syntax[0]
        data = None if information is None else \
            encode(information, syntax.is_implicit_VR, syntax.is_little_endian)
        args = (self.association_id, str(abstract_syntax), sop_class_uid, sop_instance_uid,
                event_type_id, data, str(syntax))
        if on_outcome is None or self._outcomes is None:
            return self._send(*args)
        tag = self._outcomes.register(on_outcome)
        if self._send(*args, tag=tag):
            return True
        self._outcomes.pop(tag)
        return False


class EngineEvent:
    """What handlers read of a pynetdicom `Event`: `assoc`, `context`, `request`, the data set
    under its pynetdicom name (decoded on first use) and `is_cancelled` (always False: on a
    C-CANCEL the engine closes the handler's generator instead)."""

    is_cancelled = False

    def __init__(self, event_type, assoc: EngineAssociation,
                 context: PresentationContextTuple | None, request=None, data_set: bytes = b""):
        self.event_type = event_type
        self.assoc = assoc
        self.context = context
        self.request = request
        self._data_set = data_set

    @cached_property
    def _decoded(self) -> Dataset:
        syntax = UID(self.context.transfer_syntax)
        return decode(BytesIO(self._data_set), syntax.is_implicit_VR, syntax.is_little_endian)

    identifier = attribute_list = modification_list = action_information = \
        event_information = property(lambda self: self._decoded)

    @property
    def move_destination(self) -> str | None:
        """C-MOVE: the Move Destination (pynetdicom's `Event.move_destination`)."""
        return getattr(self.request, "MoveDestination", None)


def _primitive(request: dict, data_set: bytes):
    """The pynetdicom request primitive the handler would have been given."""
    command = request["command"]
    data = BytesIO(data_set) if data_set else None
    if command in ("C-FIND-RQ", "C-GET-RQ", "C-MOVE-RQ"):
        primitive = {"C-FIND-RQ": C_FIND, "C-GET-RQ": C_GET, "C-MOVE-RQ": C_MOVE}[command]()
        primitive.AffectedSOPClassUID = request["sop_class_uid"]
        primitive.Priority = request.get("priority", 2)
        primitive.Identifier = data
        if command == "C-MOVE-RQ":
            primitive.MoveDestination = request["move_destination"]
    elif command == "N-EVENT-REPORT-RQ":
        primitive = N_EVENT_REPORT()
        primitive.AffectedSOPClassUID = request["sop_class_uid"]
        primitive.AffectedSOPInstanceUID = request["sop_instance_uid"]
        primitive.EventTypeID = request["event_type_id"]
        primitive.EventInformation = data
    else:
        primitive = {"N-CREATE-RQ": N_CREATE, "N-SET-RQ": N_SET, "N-GET-RQ": N_GET,
                     "N-ACTION-RQ": N_ACTION, "N-DELETE-RQ": N_DELETE}[command]()
        instance = request.get("sop_instance_uid") or None
        if command == "N-CREATE-RQ":
            primitive.AffectedSOPClassUID = request["sop_class_uid"]
            primitive.AffectedSOPInstanceUID = instance
            primitive.AttributeList = data
        else:
            primitive.RequestedSOPClassUID = request["sop_class_uid"]
            primitive.RequestedSOPInstanceUID = instance
        if command == "N-SET-RQ":
            primitive.ModificationList = data
        elif command == "N-GET-RQ":
            tags = [Tag(tag) for tag in request.get("attribute_list") or []]
            primitive.AttributeIdentifierList = tags or None
        elif command == "N-ACTION-RQ":
            primitive.ActionTypeID = request.get("action_type_id")
            primitive.ActionInformation = data
    primitive.MessageID = request["message_id"]
    return primitive


def _status(status) -> tuple[int, dict]:
    """A handler's status (an int, or a data set with Status and maybe Error Comment and
    Affected SOP Instance UID) as the engine's status and fields."""
    if not isinstance(status, Dataset):
        return int(status), {}
    fields = {}
    if status.get("ErrorComment"):
        fields["error_comment"] = str(status.ErrorComment)
    if status.get("AffectedSOPInstanceUID"):
        fields["affected_sop_instance_uid"] = str(status.AffectedSOPInstanceUID)
    if status.get("OffendingElement"):
        fields["offending_element"] = [int(tag) for tag in _tags(status.OffendingElement)]
    if status.get("AttributeIdentifierList"):
        fields["attribute_identifier_list"] = [
            int(tag) for tag in _tags(status.AttributeIdentifierList)]
    if status.get("ErrorID") is not None:
        fields["error_id"] = int(status.ErrorID)
    return int(status.Status), fields


def _tags(value) -> list:
    """An AT element's value as a list (pydicom gives one tag for a single value)."""
    return [value] if isinstance(value, int) else list(value)


def _bound_for(bound: list[tuple], assoc: EngineAssociation,
               request: dict) -> tuple[Callable, list[str]]:
    """Which of the services bound to a request's event serves it: the one whose contexts
    name the request's SOP class (MPPS), else the first whose contexts this association
    accepted (print requests carry a SOP class of the meta class they came on), else the
    first bound."""
    sop_class = request.get("abstract_syntax") or request.get("sop_class_uid")
    exact = next((entry for entry in bound if sop_class in entry[1]), None)
    if exact is not None:
        return exact
    accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
    return next((entry for entry in bound if accepted.intersection(entry[1])), bound[0])


class EngineDispatcher:
    """The services' handlers behind a `DicomEngine`: give it `on_request` and (directly or
    from the server's own callback) `association_event` as `on_association`; `attach(engine)`
    lets the associations send N-EVENT-REPORTs."""

    def __init__(self, services: Iterable, dimse_timeout: float | None = None):
        self.dimse_timeout = dimse_timeout
        #: per event, each bound handler with its service's abstract syntaxes, in service order
        self._handlers: dict = {}
        self._ending: list[Callable] = []
        for service in services:
            syntaxes = [str(cx.abstract_syntax) for cx in service.contexts()]
            for event_type, handler in service.handlers():
                if event_type in ENDING_EVENTS:
                    if handler not in self._ending:
                        self._ending.append(handler)
                elif event_type in COMMAND_EVENTS.values():
                    self._handlers.setdefault(event_type, []).append((handler, syntaxes))
        self._send: Callable[..., bool] | None = None
        self._outcomes = EventOutcomes()
        self._lock = threading.Lock()
        self._associations: dict[int, EngineAssociation] = {}

    def attach(self, engine) -> None:
        """The engine whose `send_event` carries the associations' N-EVENT-REPORTs."""
        self._send = engine.send_event

    # -- association events -----------------------------------------------------------------

    def association_event(self, event: dict) -> None:
        """The engine's association event: "established" (before any request of it) keeps a
        view of the association; "ended" (once) tells the services and drops it; "event_outcome"
        (before "ended") calls the `on_outcome` of an N-EVENT-REPORT sent with one."""
        if event["event"] == "event_outcome":
            self._event_outcome(event)
            return
        if event["event"] not in ("established", "ended"):
            return
        association_id = event["association_id"]
        if event["event"] == "established":
            contexts = [(cx["context_id"], cx["abstract_syntax"], cx["transfer_syntax"])
                        for cx in event.get("contexts", [])]
            view = EngineAssociation(association_id, event.get("calling_ae", ""),
                                     event.get("called_ae", ""), event.get("peer", ""),
                                     contexts, self.dimse_timeout, self._send,
                                     self._outcomes)
            with self._lock:
                self._associations[association_id] = view
        elif event["event"] == "ended":
            with self._lock:
                view = self._associations.pop(association_id, None)
            if view is not None:
                self._ended(view, event)

    def _event_outcome(self, event: dict) -> None:
        callback = self._outcomes.pop(int(event.get("tag", 0)))
        if callback is None:
            return
        try:
            callback(bool(event.get("delivered")), int(event.get("status", -1)))
        except Exception:
            log.exception("the N-EVENT-REPORT outcome handler %s failed", callback)

    def _ended(self, view: EngineAssociation, event: dict) -> None:
        view.is_established = False
        outcome = str(event.get("outcome", ""))
        kind = evt.EVT_RELEASED if outcome == "released" else \
            evt.EVT_ABORTED if "abort" in outcome else evt.EVT_CONN_CLOSE
        ending = EngineEvent(kind, view, None)
        for handler in self._ending:
            try:
                handler(ending)
            except Exception:
                log.exception("the end-of-association handler %s failed", handler)

    def _association(self, request: dict) -> EngineAssociation:
        with self._lock:
            view = self._associations.get(request["association_id"])
        if view is None:
            raise LookupError("no 'established' event for this association: pass "
                              "EngineDispatcher.association_event to DicomEngine as "
                              "on_association")
        return view

    # -- requests ---------------------------------------------------------------------------

    def on_request(self, request: dict, data_set: bytes) -> Iterator[tuple]:
        """The engine's request handler: the answers of the service bound to the command."""
        event_type = COMMAND_EVENTS.get(request["command"])
        failed = FAILED_STATUS.get(request["command"], N_FAILED)
        bound = self._handlers.get(event_type)
        if not bound:
            log.warning("%s from %s: no service handles it", request["command"],
                        request.get("calling_ae", "").strip())
            return iter([(failed, None, {"error_comment": "not supported here"})])
        try:
            assoc = self._association(request)
            handler, own = _bound_for(bound, assoc, request)
            context = self._context(assoc, request, own)
            event = EngineEvent(event_type, assoc, context, _primitive(request, data_set),
                                data_set)
        except Exception as exc:  # e.g. a UID pynetdicom's primitive refuses
            log.error("%s from %s refused: %s", request["command"],
                        request.get("calling_ae", "").strip(), exc)
            return iter([(failed, None, {"error_comment": str(exc)[:64]})])
        if event_type is evt.EVT_C_FIND:
            return self._find_answers(handler, event)
        if event_type is evt.EVT_C_GET:
            return get_answers(handler, event, encode)
        if event_type is evt.EVT_C_MOVE:
            return move_answers(handler, event, encode)
        return self._n_answer(handler, event, failed)

    def _context(self, assoc: EngineAssociation, request: dict,
                 own: list[str]) -> PresentationContextTuple:
        """The presentation context the request came on: the engine's context ID when it
        gives one; else the context of its SOP class, else one of the handling service's
        (print requests come on the meta SOP class's context) in the request's syntax."""
        if request.get("presentation_context_id"):
            context = assoc.context(request["presentation_context_id"])
            if context is not None:
                return context.as_tuple
        syntax = request.get("transfer_syntax_uid")
        candidates = [cx for cx in assoc.accepted_contexts if cx.transfer_syntax[0] == syntax]
        wanted = request.get("abstract_syntax") or request["sop_class_uid"]
        context = next((cx for cx in candidates if cx.abstract_syntax == wanted), None) or \
            next((cx for cx in candidates if cx.abstract_syntax in own), None)
        if context is None:
            return PresentationContextTuple(0, UID(wanted), UID(syntax))
        return context.as_tuple

    def _find_answers(self, handler, event: EngineEvent) -> Iterator[tuple]:
        """C-FIND: each (status, identifier) the handler yields; closed by the engine on a
        C-CANCEL, which closes the handler's generator too."""
        syntax = UID(event.context.transfer_syntax)
        answers = handler(event)
        try:
            for status, identifier in answers:
                code, fields = _status(status)
                data = None
                if code in PENDING and identifier is not None:
                    data = encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian)
                    if data is None:
                        yield C_FIND_FAILED, None, {"error_comment": "cannot encode an answer"}
                        return
                yield code, data, fields
                if code not in PENDING:
                    return
        except Exception:
            log.exception("the C-FIND handler %s failed", handler)
            yield C_FIND_FAILED, None, {}
        finally:
            close = getattr(answers, "close", None)
            if close is not None:
                close()

    def _n_answer(self, handler, event: EngineEvent, failed: int) -> Iterator[tuple]:
        """DIMSE-N: the handler's one answer, (status, data set) or just a status."""
        try:
            result = handler(event)
            status, reply = result if isinstance(result, tuple) else (result, None)
            code, fields = _status(status)
        except Exception:
            log.exception("the %s handler %s failed", event.request.__class__.__name__,
                          handler)
            yield failed, None, {}
            return
        request = event.request
        if isinstance(request, N_CREATE) and code == 0x0000 and \
                request.AffectedSOPInstanceUID is None and isinstance(reply, Dataset) and \
                "AffectedSOPInstanceUID" in reply:
            # PS3.7 10.1.5.1.4: the created instance's UID goes in the response's command
            fields["affected_sop_instance_uid"] = str(reply.AffectedSOPInstanceUID)
            del reply.AffectedSOPInstanceUID
        data = None
        if is_success_or_warning(code) and reply:
            syntax = UID(event.context.transfer_syntax)
            data = encode(reply, syntax.is_implicit_VR, syntax.is_little_endian)
            if data is None:
                yield failed, None, {"error_comment": "cannot encode the reply"}
                return
        yield code, data, fields
