"""[web]: the local status and configuration page, as the web component reads it."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from appliance.config.base import (
    MINUTES,
    SECONDS,
    IPAddress,
    Port,
    Section,
    check_between,
    check_ip_network,
    positive_seconds,
)


class WebConfig(Section):
    """[web]: the local status and configuration page."""

    bind: IPAddress = Field("0.0.0.0", title="Listen address",
                            description="Address the web page binds to")
    port: Port = Field(8080, title="Port", description="TCP port of the web page")
    enabled: bool = Field(True, title="Web page", description="Serve the web page")
    https: bool = Field(False, title="HTTPS", description="Serve HTTPS with a certificate "
                        "generated on first start (data_dir/web/tls/)")
    public_status: bool = Field(False, title="Status page without login", description="Show "
                                "the status dashboard without login (configuration and actions "
                                "always need it)")
    session_minutes: Annotated[int, AfterValidator(check_between(1, 1440))] = Field(
        30, title="Session length", json_schema_extra=MINUTES,
        description="Minutes without a request after which a login session ends")
    login_attempts: Annotated[int, AfterValidator(check_between(1, 100))] = Field(
        5, title="Login attempts",
        description="Failed logins from one address before it must wait (60 s, doubling)")
    echo_timeout: Annotated[float, AfterValidator(positive_seconds(120))] = Field(
        10.0, title="Test (C-ECHO) timeout", json_schema_extra=SECONDS,
        description="Seconds the peer 'Test' button waits for each step of a C-ECHO")
    trusted_proxies: list[Annotated[str, AfterValidator(check_ip_network)]] = Field(
        default_factory=list, title="Trusted reverse proxies",
        description="Addresses or networks of reverse proxies in front "
        "of the web page: only a request from one of these may name its client in "
        "X-Forwarded-For (for logs and the login limit); empty: the header is ignored")
