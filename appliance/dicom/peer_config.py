"""[[peers]]: the remote nodes we talk to, over DIMSE (`protocol = "dicom"`, the default) or
DICOMweb (`protocol = "dicomweb"`: STOW-RS to store, QIDO-RS to check it is there).

Composed into `ApplianceConfig` by `appliance/config/schema.py`. Each key is checked against the
protocol (and the auth scheme) in a validator of that key, so an error names the key that is
wrong: a DICOM peer without `ae_title`, a DICOMweb peer without `url`, `basic` without
`username`, both `token` and `token_file`, a `url` that is not http(s). `password` and `token`
are secrets: shown masked wherever the configuration is shown."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from appliance.config.base import Name, Port, Section, check_ae_title, check_host

DIMSE_KEYS = ("ae_title", "host")
DICOMWEB_KEYS = ("url", "username", "password", "token", "token_file", "ca_certificates")


def _protocol(info: ValidationInfo) -> str | None:
    """The peer's protocol, None when it was itself invalid (its own error is reported)."""
    return info.data.get("protocol")


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http:// or https:// URL such as "
                         f"https://pacs.example.org/dicom-web, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must be the base URL of the DICOMweb service, without ?query or "
                         f"#fragment, got {value!r}")
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials: use auth with username and password")
    return value


class PeerConfig(Section):
    """[[peers]]: a remote node we talk to, over DICOM (DIMSE) or DICOMweb."""

    name: Name = Field(title="Name",
                       description="Short name used by `appliance echo NAME` and routing")
    protocol: Literal["dicom", "dicomweb"] = Field(
        "dicom", title="Protocol",
        description="How we talk to it: \"dicom\" (DIMSE: ae_title, host, port) or "
        "\"dicomweb\" (STOW-RS/QIDO-RS: url, auth)")
    ae_title: str = Field("", validate_default=True, title="AE title",
                          description="The peer's AE title (protocol \"dicom\")")
    host: str = Field("", validate_default=True, title="Host",
                      description="Host name or IP address (protocol \"dicom\")")
    port: Port = Field(104, title="Port",
                      description="The peer's DICOM port (protocol \"dicom\")")
    tls: bool = Field(False, title="Use TLS",
                      description="Talk to this peer over DICOM TLS: its certificate "
                      "checked against [dicom.tls] ca_certificates, ours presented")
    url: str = Field("", validate_default=True, title="DICOMweb URL",
                     description="Base URL of the DICOMweb "
                     "service, e.g. https://pacs.example.org/dicom-web (protocol \"dicomweb\")")
    auth: Literal["none", "basic", "bearer"] = Field(
        "none", title="Authentication",
        description="DICOMweb authentication: none, basic (username, password) or "
        "bearer (token or token_file)")
    username: str = Field("", validate_default=True, title="User name",
                          description="User name for auth \"basic\"")
    password: SecretStr = Field(SecretStr(""), title="Password",
                                description="Password for auth \"basic\"")
    token: SecretStr = Field(SecretStr(""), title="Bearer token",
                             description="Bearer token for auth \"bearer\"")
    token_file: str = Field("", validate_default=True, title="Bearer token file",
                            description="File holding the bearer "
                            "token (read at each request, so it can be renewed), instead of token")
    tls_verify: bool = Field(True, title="Check the HTTPS certificate",
                            description="Check the DICOMweb server's HTTPS certificate")
    ca_certificates: str = Field("", title="HTTPS CA certificates",
                                 description="CAs (PEM bundle) the DICOMweb server's "
                                 "certificate is checked against (empty: the system's)")

    @field_validator("ae_title", "host")
    @classmethod
    def _dimse_keys(cls, value: str, info: ValidationInfo) -> str:
        protocol = _protocol(info)
        if protocol == "dicomweb":
            if value:
                raise ValueError("not used with protocol = \"dicomweb\" (the peer is "
                                 "reached at its url)")
            return value
        if not value:
            raise ValueError("required key is missing or empty (a peer with protocol = "
                             "\"dicom\", the default, needs ae_title and host)")
        return check_ae_title(value) if info.field_name == "ae_title" else check_host(value)

    @field_validator("tls")
    @classmethod
    def _no_dimse_tls(cls, value: bool, info: ValidationInfo) -> bool:
        if value and _protocol(info) == "dicomweb":
            raise ValueError("DICOM TLS is not used with protocol = \"dicomweb\": give an "
                             "https:// url (tls_verify, ca_certificates)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        protocol = _protocol(info)
        if protocol == "dicomweb":
            if not value:
                raise ValueError("required with protocol = \"dicomweb\" (the base URL of the "
                                 "DICOMweb service)")
            return check_url(value)
        if value and protocol == "dicom":
            raise ValueError("only used with protocol = \"dicomweb\"")
        return value

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str, info: ValidationInfo) -> str:
        if value != "none" and _protocol(info) == "dicom":
            raise ValueError("only used with protocol = \"dicomweb\"")
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str, info: ValidationInfo) -> str:
        auth = info.data.get("auth")
        if auth == "basic" and not value:
            raise ValueError("required with auth = \"basic\"")
        if value and auth in ("none", "bearer"):
            raise ValueError(f"not used with auth = \"{auth}\"")
        if ":" in value:
            raise ValueError("must not contain ':' (HTTP basic authentication)")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        auth = info.data.get("auth")
        if _is_set(value) and auth in ("none", "bearer"):
            raise ValueError(f"not used with auth = \"{auth}\"")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        auth = info.data.get("auth")
        if _is_set(value) and auth in ("none", "basic"):
            raise ValueError(f"not used with auth = \"{auth}\"")
        if any(ch in value.get_secret_value() for ch in "\r\n"):
            raise ValueError("must be one line")
        return value

    @field_validator("token_file")
    @classmethod
    def _token_file(cls, value: str, info: ValidationInfo) -> str:
        auth = info.data.get("auth")
        if value and auth in ("none", "basic"):
            raise ValueError(f"not used with auth = \"{auth}\"")
        if auth == "bearer":
            token = info.data.get("token")
            if token is None:  # the token itself was refused
                return value
            if value and _is_set(token):
                raise ValueError("set token or token_file, not both")
            if not value and not _is_set(token):
                raise ValueError("auth = \"bearer\" needs token or token_file")
        return value

    @field_validator("ca_certificates")
    @classmethod
    def _ca_only_for_dicomweb(cls, value: str, info: ValidationInfo) -> str:
        if value and _protocol(info) == "dicom":
            raise ValueError("only used with protocol = \"dicomweb\" (DICOM TLS peers use "
                             "[dicom.tls] ca_certificates)")
        return value

    @property
    def is_dicomweb(self) -> bool:
        return self.protocol == "dicomweb"


def check_dimse_peer(name: str, peers: list[PeerConfig], key: str) -> None:
    """`key` names peer `name`: ValueError when that is a DICOMweb peer (it needs DIMSE).
    An unknown name is left to the caller's own check."""
    peer = next((p for p in peers if p.name == name), None)
    if peer is not None and peer.is_dicomweb:
        raise ValueError(f"{key}: peer {name!r} has protocol = \"dicomweb\"; this needs a "
                         "DICOM (DIMSE) peer")
