"""Which doors of the box are open: one row per listening service, read from the configuration.

Each door says where it listens, who may come in (the guard the configuration sets, or that
anyone who can reach the port may) and the limits that always hold. The web page's status card
and `GET /api/v1/access` show these rows; the conformance statement describes the same guards.
A door is *open* when the configuration names nobody: any host (or any calling AE title the
association policy lets in) may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config.schema import ApplianceConfig


@dataclass(frozen=True)
class Door:
    """One service a stranger on the network could try."""

    name: str
    listens: str  # "DICOM port 104", "TCP 2575", "off"
    enabled: bool
    open: bool  # enabled and nobody named: anyone who reaches the port may use it
    guard: str  # who may come in, in words
    setting: str  # the configuration key that closes (or opens) it


def _titles(titles: list[str]) -> str:
    return ", ".join(titles)


def doors(config: ApplianceConfig) -> list[Door]:
    """The doors of `config`, in the order a technician checks them."""
    d = config.dicom
    port = f"DICOM port {d.port} on {d.bind}"
    called = (f"called AE title must be {d.ae_title}" if d.strict_called_aet
              else "any called AE title")
    if d.allowed_calling_aets:
        association = f"calling AE titles {_titles(d.allowed_calling_aets)}; {called}"
    else:
        association = f"any calling AE title; {called}"
    rows = [Door("DICOM associations (and C-ECHO)", port, True, not d.allowed_calling_aets,
                 association, "dicom.allowed_calling_aets")]

    def service(name: str, enabled: bool, allowed: list[str], setting: str) -> Door:
        if not enabled:
            return Door(name, "off", False, False, "service disabled", setting)
        if allowed:
            return Door(name, port, True, False, f"calling AE titles {_titles(allowed)}",
                        setting)
        return Door(name, port, True, not d.allowed_calling_aets,
                    f"whoever may associate ({association})", setting)

    rows.append(service("Storage (C-STORE)", True, config.storage.allowed_calling_aets,
                        "storage.allowed_calling_aets"))
    w = config.worklist
    rows.append(service("Modality Worklist (C-FIND)", w.enabled, w.allowed_calling_aets,
                        "worklist.allowed_calling_aets"))
    rows.append(service("Print Management", config.print.enabled, [],
                        "dicom.allowed_calling_aets"))
    h = w.hl7
    if not (w.enabled and h.enabled):
        rows.append(Door("HL7 orders (MLLP)", "off", False, False, "listener disabled",
                         "worklist.hl7.allowed_hosts"))
    else:
        limits = (f"at most {h.max_connections} connections, {h.max_connections_per_host} "
                  f"per host")
        guard = (f"hosts {_titles(h.allowed_hosts)}; {limits}" if h.allowed_hosts
                 else f"any host; {limits}")
        rows.append(Door("HL7 orders (MLLP)", f"TCP port {h.port} on {h.bind}", True,
                         not h.allowed_hosts, guard, "worklist.hl7.allowed_hosts"))
    web = config.web
    if not web.enabled:
        rows.append(Door("Web page and API", "off", False, False, "web page disabled",
                         "web.enabled"))
    else:
        scheme = "HTTPS" if web.https else "HTTP"
        proxies = (f"X-Forwarded-For trusted from {_titles(web.trusted_proxies)}"
                   if web.trusted_proxies else "X-Forwarded-For ignored")
        status = ("status page public, everything else needs the login" if web.public_status
                  else "login needed for every page but /api/health and /metrics")
        rows.append(Door("Web page and API", f"{scheme} port {web.port} on {web.bind}", True,
                         web.public_status, f"{status}; {proxies}", "web.public_status"))
    return rows
