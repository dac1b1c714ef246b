"""The one typed configuration schema of the appliance: `ApplianceConfig`, the whole
`appliance.toml`, composed from the sections each component declares next to its code.

| section | declared in |
|---|---|
| [device] | here |
| [dicom], [dicom.tls] | `appliance/dicom/config.py` |
| [[peers]] | `appliance/dicom/peer_config.py` |
| [hal], [console], [network] | `appliance/maintenance/config.py` |
| [web] | `appliance/web/config.py` |
| [log] | `appliance/system/config.py` |
| [storage] | `appliance/dicom/storage_config.py` |
| [[destinations]], [[routes]] | `appliance/forward/config.py`, `coercion_config.py` |
| [worklist] | `appliance/worklist/config.py` |
| [mpps] | `appliance/mpps/config.py` |
| [storage_commitment] | `appliance/commitment/config.py` |
| [query_retrieve] | `appliance/query/config.py` |
| [[printers]], [print] | `appliance/print/config.py` |

The sections are built from `appliance/config/base.py` (the `Section` base, shared validators,
units). The loader, `appliance config`, the web forms and the front panel all read and validate
through this model, so a value that one of them accepts is accepted by all; the checks that
need several sections (a destination names a peer, ...) are here. Every field carries a `title`
and a `description` (and a unit where it has one): the web forms, the front panel and the API's
schema all read them from here (appliance/config/labels.py).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from appliance.commitment.config import StorageCommitmentConfig
from appliance.config.base import Name, Section, check_ae_title, refuse
from appliance.dicom.config import DicomConfig, DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig, check_dimse_peer
from appliance.dicom.storage_config import StorageConfig
from appliance.forward.config import DestinationConfig, RouteConfig
from appliance.maintenance.config import ConsoleConfig, HalConfig, NetworkConfig
from appliance.mpps.config import MppsConfig
from appliance.print import config as print_config
from appliance.query.config import QueryRetrieveConfig
from appliance.system.config import LogConfig
from appliance.web.config import WebConfig
from appliance.worklist.config import WorklistConfig

#: Kept importable from here: `appliance config set` and the tests check an AE title with it.
__all__ = ["ApplianceConfig", "DeviceConfig", "check_ae_title"]


class DeviceConfig(Section):
    """[device]: the box itself."""

    name: Name = Field("edge-appliance", title="Box name",
                       description="Name of this box, shown on the status page")
    data_dir: str = Field(
        "var", title="Data directory",
        description="Directory for everything that changes (/data on the box); "
        "a relative path is relative to the working directory",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_not_empty(cls, value: str) -> str:
        problems = []
        if not value.strip():
            problems.append("data directory must not be empty")
        if "\0" in value:
            problems.append("data directory must not contain a NUL character")
        refuse(problems)
        return value


class ApplianceConfig(Section):
    """The whole `appliance.toml`."""

    device: DeviceConfig = Field(default_factory=DeviceConfig, title="Device")
    dicom: DicomConfig = Field(default_factory=DicomConfig, title="DICOM")
    peers: list[PeerConfig] = Field(default_factory=list, title="Peers")
    hal: HalConfig = Field(default_factory=HalConfig, title="Hardware")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, title="Serial console")
    network: NetworkConfig = Field(default_factory=NetworkConfig, title="Network")
    web: WebConfig = Field(default_factory=WebConfig, title="Web page")
    log: LogConfig = Field(default_factory=LogConfig, title="Logging")
    storage: StorageConfig = Field(default_factory=StorageConfig, title="Storage")
    destinations: list[DestinationConfig] = Field(default_factory=list, title="Destinations")
    routes: list[RouteConfig] = Field(default_factory=list, title="Routes")
    worklist: WorklistConfig = Field(default_factory=WorklistConfig, title="Worklist")
    mpps: MppsConfig = Field(default_factory=MppsConfig, title="MPPS")
    storage_commitment: StorageCommitmentConfig = Field(
        default_factory=StorageCommitmentConfig, title="Storage Commitment")
    query_retrieve: QueryRetrieveConfig = Field(default_factory=QueryRetrieveConfig,
                                                title="Query/Retrieve")
    printers: list[print_config.PrinterProfileConfig] = Field(default_factory=list,
                                                              title="Printers")
    print: print_config.PrintConfig = Field(default_factory=print_config.PrintConfig,
                                            title="Print")

    @field_validator("printers")
    @classmethod
    def _printers_consistent(cls, printers, info):
        return print_config.check_printers(printers, info.data)

    @field_validator("print")
    @classmethod
    def _print_names_a_profile(cls, section, info):
        return print_config.check_print_section(section, info.data)

    @field_validator("destinations")
    @classmethod
    def _destinations_name_peers(cls, destinations: list[DestinationConfig], info
                                 ) -> list[DestinationConfig]:
        peers = [p.name for p in info.data.get("peers", [])]
        seen: set[str] = set()
        for index, dest in enumerate(destinations):
            if dest.peer not in peers:
                known = ", ".join(peers) or "none configured"
                raise ValueError(f"destinations[{index}]: peer {dest.peer!r} is not one of the "
                                 f"[[peers]] (known: {known})")
            if dest.peer in seen:
                raise ValueError(f"peer {dest.peer!r} is a destination more than once")
            seen.add(dest.peer)
        return destinations

    @field_validator("routes")
    @classmethod
    def _routes_name_destinations(cls, routes: list[RouteConfig], info) -> list[RouteConfig]:
        names = [d.peer for d in info.data.get("destinations", [])]
        for index, route in enumerate(routes):
            for name in route.destinations:
                if name not in names:
                    known = ", ".join(names) or "none configured"
                    raise ValueError(f"routes[{index}]: {name!r} is not one of the "
                                     f"[[destinations]] (known: {known})")
        return routes

    @field_validator("worklist")
    @classmethod
    def _worklist_upstream_peer(cls, worklist: WorklistConfig, info) -> WorklistConfig:
        upstream = worklist.upstream
        peers = [p.name for p in info.data.get("peers", [])]
        if upstream.enabled and upstream.peer not in peers:
            known = ", ".join(peers) or "none configured"
            raise ValueError(f"upstream.peer {upstream.peer!r} is not one of the [[peers]] "
                             f"(known: {known})")
        if upstream.enabled:
            check_dimse_peer(upstream.peer, info.data.get("peers", []), "upstream.peer")
        return worklist

    @field_validator("mpps")
    @classmethod
    def _mpps_forward_to_peers(cls, mpps: MppsConfig, info) -> MppsConfig:
        peers = [p.name for p in info.data.get("peers", [])]
        for index, name in enumerate(mpps.forward_to):
            if name not in peers:
                known = ", ".join(peers) or "none configured"
                raise ValueError(f"forward_to[{index}]: {name!r} is not one of the [[peers]] "
                                 f"(known: {known})")
            if name in mpps.forward_to[:index]:
                raise ValueError(f"forward_to[{index}]: peer {name!r} is named more than once")
            check_dimse_peer(name, info.data.get("peers", []), f"forward_to[{index}]")
        return mpps

    @field_validator("peers")
    @classmethod
    def _unique_peer_names(cls, peers: list[PeerConfig]) -> list[PeerConfig]:
        seen: set[str] = set()
        for peer in peers:
            if peer.name in seen:
                raise ValueError(f"peer name {peer.name!r} is used more than once")
            seen.add(peer.name)
        return peers

    @field_validator("peers")
    @classmethod
    def _tls_peers_have_key_material(cls, peers: list[PeerConfig], info) -> list[PeerConfig]:
        dicom = info.data.get("dicom")
        tls = dicom.tls if dicom is not None else None
        for index, peer in enumerate(peers):
            if not peer.tls or tls is None:
                continue
            missing = [key for key in ("certificate", "private_key", "ca_certificates")
                       if not getattr(tls, key)]
            if missing:
                raise ValueError(f"peers[{index}] ({peer.name}): tls = true needs [dicom.tls] "
                                 f"{', '.join(missing)} (the certificate we present and the CAs "
                                 "the peer's certificate is checked against)")
        return peers

    def peer(self, name: str) -> PeerConfig | None:
        """The configured peer called `name`, or None."""
        return next((p for p in self.peers if p.name == name), None)

    def tls_for(self, peer: PeerConfig) -> DicomTlsConfig | None:
        """The key material for associations to `peer`: `[dicom.tls]` when the peer has
        `tls = true`, None for a plain one."""
        return self.dicom.tls if peer.tls else None
