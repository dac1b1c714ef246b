"""The native DICOM engine: the SCP side of the product served by C++ on DCMTK
(`_engine`, built by `pip install -e .` from `src/`), with the Python services behind it.

This package is the Python face of the engine: `DicomEngine` takes the `[dicom]` settings and
the presentation contexts the services declare, listens on its own native threads, answers
C-ECHO natively, writes each C-STORE data set as received to a temp file in the directory it is
given and calls `on_store` once per image; the status `on_store` returns is the one sent, and
only after it returns. Other requests (C-FIND, C-MOVE, C-GET with its C-STORE sub-operations on
the same association, the DIMSE-N requests and an N-EVENT-REPORT from the peer) go to
`on_request`, whose answers are streamed back one by one. DCMTK's own log goes to this
module's logger. `appliance run` serves it through `appliance.dicom.engine_server`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from appliance.dicom.engine import _engine
from appliance.dicom.tls_files import file_identities

log = logging.getLogger(__name__)

IMPLEMENTATION_CLASS_UID: str = _engine.IMPLEMENTATION_CLASS_UID
IMPLEMENTATION_VERSION_NAME: str = _engine.IMPLEMENTATION_VERSION_NAME

#: on_store(path, calling_ae, called_ae, sop_class_uid, sop_instance_uid, transfer_syntax_uid)
#: -> DIMSE status, or (status, error_comment): the comment goes into the C-STORE-RSP as Error
#: Comment (0000,0902) with a failure or warning status (cut to 64 printable ASCII
#: characters). `path` is the temp file (preamble, File Meta, data set as received); move it
#: into place to keep it: whatever is left at `path` when the callback returns is removed.
#: With `EngineSettings.hash_content` it also gets the keyword `content_hash=(size,
#: sha256_hex)`: the SHA-256 of exactly the bytes of `path`, taken while they were written.
#: With `store_check` (the native structural check's tables, appliance.dicom.native_check)
#: the engine checks the file on the association's thread first and passes its verdict as the
#: keyword `check`: ("parsed", transfer syntax, {tag: raw value}), ("malformed", reason) or
#: ("deferred", why).
StoreCallback = Callable[..., int | tuple[int, str | None]]
#: on_request(request, data_set) -> iterable of (status, data set bytes or None[, fields]), for
#: every request the engine does not answer itself (C-FIND, C-MOVE, C-GET, N-CREATE/SET/GET/
#: ACTION/DELETE and an N-EVENT-REPORT from the peer).
#: `request` is a dict: command ("C-FIND-RQ", "C-MOVE-RQ", "C-GET-RQ", "N-SET-RQ",
#: "N-EVENT-REPORT-RQ", ...), command_field, message_id, association_id (for
#: `DicomEngine.send_event`), sop_class_uid, sop_instance_uid (N-), priority, action_type_id
#: (N-ACTION), attribute_list (N-GET, tags as ints), move_destination (C-MOVE, (0000,0600)
#: without padding), event_type_id (N-EVENT-REPORT), calling_ae, called_ae,
#: transfer_syntax_uid; `data_set` (b"" when none: the identifier, attribute list, Event
#: Information, ...) and each response's are encoded in that transfer syntax.
#: C-FIND: Pending answers (0xFF00/0xFF01) are sent as they are yielded, the first other status
#: is the final one (none: Success); a C-CANCEL closes the iterator (generator.close()) and
#: answers 0xFE00; a handler that raises answers 0xC000.
#: C-MOVE and C-GET: the same, and each answer's `fields` may give the sub-operation counts
#: "remaining", "completed", "failed", "warning" ((0000,1020)-(0000,1023); each count given
#: stays until a later answer gives it again; Remaining is sent only with Pending and Cancel);
#: the final answer's data set is its identifier (the Failed SOP Instance UID List with a
#: failure or warning status); a C-CANCEL answers 0xFE00 with the counts last given. A C-MOVE
#: handler opens its own association to the Move Destination (pynetdicom's SCU API).
#: A C-GET handler also yields sub-operations, `("store", source, sop_class_uid,
#: sop_instance_uid, transfer_syntax_uid)`: `source` is a DICOM file's path (str or PathLike;
#: its data set is sent in the transfer syntax it is stored in, which must be
#: `transfer_syntax_uid`) or bytes of a data set encoded in `transfer_syntax_uid`. The engine
#: sends it as a C-STORE-RQ on this association's context of that SOP class and transfer syntax
#: accepted with the requester as SCP (`EngineSettings.retrieve_storage`), waits for the
#: C-STORE-RSP and hands its status to the generator: `status = yield ("store", ...)` (pulled
#: with generator.send(status); a plain iterator just gets next()). Nothing is transcoded: with
#: no such context the sub-operation is not sent and the status is 0x0122 (SOP class not
#: supported; also when the file is in another transfer syntax), with an unreadable source
#: 0x0110. The handler counts completed/failed/warning itself and yields Pending answers with
#: the counts as it likes. A C-CANCEL that arrives while a sub-operation waits for its answer
#: ends the C-GET (0xFE00) once that answer is in.
#: N-requests (N-EVENT-REPORT from the peer included, e.g. a Storage Commitment result): the
#: first answer is the response (none: Success); a handler that raises answers 0x0110.
#: `fields` (a dict, optional) may give
#: "affected_sop_instance_uid" (N-CREATE: the new instance's UID), and for a failure or warning
#: status (C-FIND: the final one) "error_comment" (Error Comment (0000,0902), cut to 64
#: printable ASCII characters), "offending_element" (a list of tags as ints, (0000,0901)) and
#: "error_id" (an int, (0000,0903)) and "attribute_identifier_list" (a list of tags as ints,
#: (0000,1005): the attributes a 0x0105 No Such Attribute or 0x0120 Missing Attribute is
#: about); they are not sent with Success, Pending or Cancel.
RequestHandler = Callable[[dict, bytes], Iterable[tuple[int, bytes | None]]]
#: on_association(event) for the association log and the activity LED, called on the
#: connection's own native thread (exceptions are logged and ignored):
#: {"event": "opened", "peer": "host:port"} when a TCP connection is accepted, before anything
#: is read; {"event": "established", "association_id", "peer", "calling_ae", "called_ae",
#: "contexts": [{"context_id", "abstract_syntax", "transfer_syntax"}, ...]} (accepted contexts)
#: after the A-ASSOCIATE-AC went out and before any request is served; and exactly once per
#: connection {"event": "ended", "association_id" (0: never established), "peer",
#: "calling_ae", "called_ae" ("" when unknown), "contexts" ([] when none), "operations"
#: ({"C-STORE": n, ...}: requests received, only those > 0), "outcome", "duration" (s since
#: accepted)}. `outcome` uses association_log.py's words: "released", "aborted", "connection
#: closed", "closed during negotiation", "aborted during negotiation", "rejected: <reason>
#: (<result>, <source>)", the pre-negotiation gate's ("closed before A-ASSOCIATE-RQ: ARTIM
#: timeout (10 s)", "refused: too many pending ...", "aborted: PDU type 0x04 before
#: A-ASSOCIATE-RQ", ...) and "aborted: <why>" when the engine aborts on a protocol error
#: ("aborted: P-DATA-TF length N over announced max M", ...). With this callback the engine
#: logs no per-connection line of its own.
AssociationCallback = Callable[[dict], None]


@dataclass(frozen=True)
class EngineTls:
    """DICOM over TLS on a second port (`[dicom.tls]`): BCP 195, the box's certificate and key,
    the CAs whose client certificates are accepted; the same association policy."""

    port: int = 2762
    certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    require_client_certificate: bool = True
    #: what the three files are now (`file_identities`): settings with the same paths but
    #: files replaced since compare unequal, so a renewed certificate is applied
    files: tuple = ()


@dataclass(frozen=True)
class EngineSettings:
    """What the engine is told at creation (the `[dicom]` keys of the same names)."""

    ae_title: str = "EDGEBOX"
    extra_called_aets: tuple[str, ...] = ()
    strict_called_aet: bool = True
    allowed_calling_aets: tuple[str, ...] = ()
    bind: str = "0.0.0.0"
    port: int = 11112
    max_associations: int = 10
    artim_timeout: int = 10
    #: `[dicom] max_pending_connections`
    max_pending: int = 64
    #: `[dicom] max_pending_per_host`
    max_pending_per_host: int = 8
    acse_timeout: int = 30
    dimse_timeout: int = 60
    network_timeout: int = 60
    max_pdu: int = 262144
    #: abstract syntax UID -> transfer syntax UIDs, in our order of preference
    contexts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: storage SOP class UID -> transfer syntax UIDs: accepted when the requester proposes it
    #: with the SCP role (SCP/SCU Role Selection), for the C-STORE sub-operations of a C-GET.
    #: Only with a C-GET model among `contexts` (`retrieve_storage_of(services)`).
    retrieve_storage: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: a second listener for DICOM over TLS, or None
    tls: EngineTls | None = None
    #: hash each received file while writing it (the store callback's `content_hash`): on
    #: when `[storage_commitment] enabled`, whose "intact" check needs the hash
    hash_content: bool = False

    def __post_init__(self):
        if self.retrieve_storage and not set(self.contexts) & set(GET_MODELS):
            raise ValueError("retrieve_storage needs a C-GET model among the contexts (a "
                             "Query/Retrieve service declaring e.g. Study Root GET)")

    @classmethod
    def from_config(cls, dicom, contexts: dict[str, tuple[str, ...]],
                    extra_called_aets: Iterable[str] = (),
                    retrieve_storage: dict[str, tuple[str, ...]] | None = None,
                    hash_content: bool = False) -> EngineSettings:
        """From a `DicomConfig` (`[dicom]`), the services' contexts (`contexts_of`), extra
        called titles, storage classes for C-GET (`retrieve_storage_of`) and whether to hash
        received files (`[storage_commitment] enabled`)."""
        return cls(ae_title=dicom.ae_title, extra_called_aets=tuple(extra_called_aets),
                   strict_called_aet=dicom.strict_called_aet,
                   allowed_calling_aets=tuple(dicom.allowed_calling_aets), bind=dicom.bind,
                   port=dicom.port, max_associations=dicom.max_associations,
                   artim_timeout=int(dicom.artim_timeout),
                   max_pending=dicom.max_pending_connections,
                   max_pending_per_host=dicom.max_pending_per_host,
                   acse_timeout=int(dicom.acse_timeout), dimse_timeout=int(dicom.dimse_timeout),
                   network_timeout=int(dicom.network_timeout), max_pdu=dicom.max_pdu,
                   contexts=contexts, retrieve_storage=retrieve_storage or {},
                   hash_content=hash_content,
                   tls=EngineTls(port=dicom.tls.port, certificate=dicom.tls.certificate,
                                 private_key=dicom.tls.private_key,
                                 ca_certificates=dicom.tls.ca_certificates,
                                 require_client_certificate=dicom.tls.require_client_certificate,
                                 files=file_identities(dicom.tls.certificate,
                                                       dicom.tls.private_key,
                                                       dicom.tls.ca_certificates))
                   if dicom.tls.enabled else None)


#: The Query/Retrieve C-GET information models (PS3.4 C.6, Z, U, V, X, ...): a service that
#: declares one of these may also declare storage classes for C-GET (`retrieve_storage_of`).
GET_MODELS = frozenset({
    "1.2.840.10008.5.1.4.1.2.1.3",   # Patient Root Query/Retrieve Information Model - GET
    "1.2.840.10008.5.1.4.1.2.2.3",   # Study Root Query/Retrieve Information Model - GET
    "1.2.840.10008.5.1.4.1.2.3.3",   # Patient/Study Only (retired) - GET
    "1.2.840.10008.5.1.4.1.2.4.3",   # Composite Instance Root Retrieve - GET
    "1.2.840.10008.5.1.4.1.2.5.3",   # Composite Instance Retrieve Without Bulk Data - GET
    "1.2.840.10008.5.1.4.38.4",      # Hanging Protocol Information Model - GET
    "1.2.840.10008.5.1.4.39.4",      # Color Palette Query/Retrieve Information Model - GET
})


def _role_only(context) -> bool:
    """A context declared only for the requester's SCP role (`scp_role=True, scu_role=False`,
    see `appliance.dicom.declared_context`): storage classes for C-GET."""
    return context.scp_role is True and context.scu_role is not True


def _merged(contexts) -> dict[str, tuple[str, ...]]:
    merged: dict[str, dict[str, None]] = {}
    for context in contexts:
        merged.setdefault(str(context.abstract_syntax), {}).update(
            dict.fromkeys(map(str, context.transfer_syntax)))
    return {abstract: tuple(syntaxes) for abstract, syntaxes in merged.items()}


def contexts_of(services) -> dict[str, tuple[str, ...]]:
    """The presentation contexts DICOM services declare (`DeclaredContext`s from each
    service's `contexts()`), merged per abstract syntax in the order first seen; contexts
    declared only for the requester's SCP role are left to `retrieve_storage_of`."""
    return _merged(cx for service in services for cx in service.contexts()
                   if not _role_only(cx))


def retrieve_storage_of(services) -> dict[str, tuple[str, ...]]:
    """The storage SOP classes a Query/Retrieve service offers for the C-STORE sub-operations
    of its C-GET: the contexts of `contexts()` with `scp_role=True` (an SCP/SCU Role Selection
    proposing the requester as SCP is accepted for them), for `EngineSettings`."""
    return _merged(cx for service in services for cx in service.contexts()
                   if cx.scp_role is True)


def _timeout_seconds(value: int) -> int:
    return max(1, int(value))


class DicomEngine:
    """The listener. `start()` binds and returns; `stop(grace)` stops accepting, gives open
    associations `grace` seconds, then aborts them; `update_policy(settings)` changes titles,
    allow-list, limits and timeouts for new connections while it runs."""

    def __init__(self, settings: EngineSettings, incoming_dir: Path,
                 on_store: StoreCallback | None = None,
                 on_request: RequestHandler | None = None,
                 on_association: AssociationCallback | None = None,
                 store_check: _engine.CheckRules | None = None):
        self.settings = settings
        self.incoming_dir = Path(incoming_dir)
        self._native = _engine.Engine(
            **self._native_settings(settings), on_store=on_store, on_request=on_request,
            on_association=on_association, store_check=store_check)
        if settings.tls is not None:
            self._set_native_tls(settings.tls)
        self.apply_log_level()
        # Native threads must be gone before the interpreter is: stop at exit at the latest.
        weakref.finalize(self, self._native.stop, 0.0)

    def _native_settings(self, settings: EngineSettings) -> dict:
        return dict(
            ae_title=settings.ae_title, extra_called_aets=list(settings.extra_called_aets),
            strict_called_aet=settings.strict_called_aet,
            allowed_calling_aets=list(settings.allowed_calling_aets), bind=settings.bind,
            port=settings.port, max_associations=settings.max_associations,
            artim_timeout=_timeout_seconds(settings.artim_timeout),
            max_pending=settings.max_pending,
            max_pending_per_host=settings.max_pending_per_host,
            acse_timeout=_timeout_seconds(settings.acse_timeout),
            dimse_timeout=_timeout_seconds(settings.dimse_timeout),
            network_timeout=_timeout_seconds(settings.network_timeout),
            max_pdu=settings.max_pdu,
            contexts={k: list(v) for k, v in settings.contexts.items()},
            retrieve_storage={k: list(v) for k, v in settings.retrieve_storage.items()},
            incoming_dir=str(self.incoming_dir), hash_content=settings.hash_content)

    def update_policy(self, settings: EngineSettings) -> None:
        """Apply `settings` to connections accepted from now on: ae_title, extra_called_aets,
        strict_called_aet, allowed_calling_aets, max_associations, artim_timeout, max_pending,
        max_pending_per_host, the ACSE/DIMSE/network timeouts, max_pdu and hash_content.
        Open associations keep the policy they were accepted with. bind, port and contexts
        cannot change this way (the listener and the services' declarations): ValueError
        naming the key."""
        for key in ("bind", "port", "contexts", "retrieve_storage", "tls"):
            if getattr(settings, key) != getattr(self.settings, key):
                raise ValueError(f"{key} cannot change while the engine runs: "
                                 f"{getattr(self.settings, key)!r} -> "
                                 f"{getattr(settings, key)!r} (restart the engine)")
        self._native.update_policy(**self._native_settings(settings))
        self.settings = settings
        log.debug("engine policy updated for new connections: ae_title %s", settings.ae_title)

    def _set_native_tls(self, tls: EngineTls) -> None:
        self._native.set_tls(port=tls.port, certificate=tls.certificate,
                             private_key=tls.private_key, ca_certificates=tls.ca_certificates,
                             require_client_certificate=tls.require_client_certificate)

    def set_tls(self, tls: EngineTls | None) -> None:
        """New TLS settings on a running engine: new handshakes use the files as they are now,
        a new port gets a new listener, None closes it; the plain listener and every open
        association (TLS ones included) are untouched. RuntimeError naming the file and the
        reason, or the port, leaves the previous settings serving."""
        if tls is None:
            self._native.disable_tls()
        else:
            self._set_native_tls(tls)
        self.settings = replace(self.settings, tls=tls)

    def apply_log_level(self) -> None:
        """Send up only what this module's logger passes now (DCMTK's log and the engine's
        own lines); call again after the logging configuration changed."""
        level = max(logging.DEBUG, log.getEffectiveLevel())
        _engine.route_dcmtk_log(level)
        self._native.set_log_level(level)

    def start(self) -> None:
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        self._native.start()

    def stop(self, grace: float = 10.0) -> None:
        self._native.stop(grace)

    def send_event(self, association_id: int, abstract_syntax: str, sop_class_uid: str,
                   sop_instance_uid: str, event_type_id: int, data_set: bytes | None = None,
                   transfer_syntax_uid: str = "1.2.840.10008.1.2", tag: int = 0) -> bool:
        """Queue an N-EVENT-REPORT to the peer of association `association_id` (the
        `association_id` of a request dict), on the context of `abstract_syntax`, with Event
        Information `data_set` encoded in `transfer_syntax_uid`. Sent by that association's
        thread between requests, at most ~0.1 s later; its answer is logged if not Success.
        False when the association no longer takes commands. A non-zero `tag` gets one
        "event_outcome" association event (`tag`, `delivered`, `status`: the peer's answer,
        or not delivered when the association ended before it was sent or answered)."""
        return self._native.send_event(
            association_id=association_id, abstract_syntax=abstract_syntax,
            sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
            event_type_id=event_type_id, data_set=data_set,
            transfer_syntax_uid=transfer_syntax_uid, tag=tag)

    @property
    def port(self) -> int:
        """The port actually bound (differs from the configured one only for port 0)."""
        return self._native.port

    @property
    def tls_port(self) -> int:
        """The TLS listener's port (-1: none)."""
        return self._native.tls_port

    @property
    def active_associations(self) -> int:
        return self._native.active_associations

    @property
    def running(self) -> bool:
        return self._native.running
