"""The services declare their presentation contexts as plain UID strings for the engine (no
pynetdicom context objects built at start-up), every UID valid and no transfer syntax twice."""

from __future__ import annotations

from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from appliance.component_list import dicom_services
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.engine import contexts_of, retrieve_storage_of


def test_declare_keeps_the_order_and_drops_repeats():
    context = declare(UID("1.2.840.10008.1.1"),
                      [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assert context == DeclaredContext("1.2.840.10008.1.1",
                                      ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"))
    assert type(context.abstract_syntax) is str
    assert all(type(syntax) is str for syntax in context.transfer_syntax)
    assert (context.scp_role, context.scu_role) == (None, None)


def test_every_service_declares_plain_valid_uids():
    declared = [cx for service in dicom_services() for cx in service.contexts()]
    assert len(declared) > 300  # storage twice (as SCP, and for C-GET), the others once
    for context in declared:
        assert isinstance(context, DeclaredContext), context
        assert UID(context.abstract_syntax).is_valid, context.abstract_syntax
        assert context.transfer_syntax, context.abstract_syntax
        assert len(set(context.transfer_syntax)) == len(context.transfer_syntax)
        assert all(UID(syntax).is_transfer_syntax for syntax in context.transfer_syntax), context


def test_c_get_storage_is_declared_for_the_requesters_scp_role_only():
    services = dicom_services()
    accepted = contexts_of(services)
    for_get = retrieve_storage_of(services)
    assert "1.2.840.10008.5.1.4.1.1.2" in for_get  # CT Image Storage
    assert all(syntax in accepted[abstract] for abstract, syntaxes in for_get.items()
               for syntax in syntaxes)  # the same classes are accepted as SCP too
    roles = {(cx.scp_role, cx.scu_role) for service in services for cx in service.contexts()}
    assert roles == {(None, None), (True, False)}
