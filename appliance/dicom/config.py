"""[dicom] and [dicom.tls]: the one DICOM listener, its association policy and its TLS port.

Composed into `ApplianceConfig` by `appliance/config/schema.py`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from appliance.config.base import (
    BYTES,
    SECONDS,
    AETitle,
    IPAddress,
    Port,
    Section,
    check_between,
    check_max_associations,
    check_max_pdu,
    positive_seconds,
)


class DicomTlsConfig(Section):
    """[dicom.tls]: DICOM over TLS (BCP 195, TLS 1.2 or newer) on a second port, with the same
    association policy as the plain port."""

    enabled: bool = Field(False, title="DICOM over TLS",
                          description="Serve DICOM over TLS on its own port as well")
    port: Port = Field(2762, title="TLS port", description="TCP port of the DICOM TLS listener")
    certificate: str = Field("", title="Certificate file", description="The box's certificate "
                             "(PEM; its chain may follow it in the same file)")
    private_key: str = Field("", title="Private key file", description="The certificate's "
                             "private key (PEM, unencrypted, readable only by the appliance)")
    ca_certificates: str = Field("", title="Trusted CA certificates", description="The CAs "
                                 "whose client certificates are accepted, and which sign the "
                                 "peers we connect to (PEM bundle)")
    require_client_certificate: bool = Field(
        True, title="Require a client certificate",
        description="Refuse a TLS client that presents no certificate from those CAs")

    @model_validator(mode="after")
    def _files_when_enabled(self) -> DicomTlsConfig:
        if not self.enabled:
            return self
        missing = [key for key in ("certificate", "private_key") if not getattr(self, key)]
        if self.require_client_certificate and not self.ca_certificates:
            missing.append("ca_certificates")
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ValueError(f"TLS is enabled but {' and '.join(missing)} {verb} not set")
        return self


class DicomConfig(Section):
    """[dicom]: the one DICOM listener and its association policy."""

    ae_title: AETitle = Field("EDGEBOX", title="AE title",
                              description="Our AE title (called AE title)")
    port: Port = Field(11112, title="Port", description="TCP port of the DICOM listener")
    bind: IPAddress = Field("0.0.0.0", title="Listen address",
                            description="Address the DICOM listener binds to")
    strict_called_aet: bool = Field(
        True, title="Check the called AE title",
        description="Reject associations whose called AE title is not ours")
    allowed_calling_aets: list[AETitle] = Field(
        default_factory=list, title="Allowed calling AE titles",
        description="When not empty, only these calling AE titles may associate")
    max_associations: Annotated[int, AfterValidator(check_max_associations)] = Field(
        10, title="Most associations at once",
        description="Associations open at once; more are rejected (local limit exceeded)")
    acse_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, title="Association timeout", json_schema_extra=SECONDS,
        description="Seconds to wait for association messages")
    dimse_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, title="Message timeout", json_schema_extra=SECONDS,
        description="Seconds to wait for DIMSE messages")
    network_timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, title="Idle connection timeout", json_schema_extra=SECONDS,
        description="Seconds an idle connection is kept before it is closed")
    max_pdu: Annotated[int, AfterValidator(check_max_pdu)] = Field(
        262144, title="Largest PDU", json_schema_extra=BYTES,
        description="Largest PDU we accept, in bytes (0 = no limit)")
    artim_timeout: Annotated[float, AfterValidator(positive_seconds(300))] = Field(
        10.0, title="Association request timeout", json_schema_extra=SECONDS,
        description="Seconds a new connection has to send its whole A-ASSOCIATE-RQ before it "
        "is closed (ARTIM timer)")
    max_pending_connections: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        64, title="Most half-open connections", description="Connections that have not yet "
        "sent their whole A-ASSOCIATE-RQ, from all hosts; more are closed at once (they never "
        "count against max_associations)")
    max_pending_per_host: Annotated[int, AfterValidator(check_between(1, 1024))] = Field(
        8, title="Most half-open connections per host", description="Such connections from "
        "one source address; more are closed at once, so one host cannot lock out the others")
    tls: DicomTlsConfig = Field(default_factory=DicomTlsConfig, title="DICOM over TLS")

    @model_validator(mode="after")
    def _tls_port_not_the_plain_one(self) -> DicomConfig:
        if self.tls.enabled and self.tls.port == self.port:
            raise ValueError(f"tls.port {self.tls.port} is the plain DICOM port too")
        return self
