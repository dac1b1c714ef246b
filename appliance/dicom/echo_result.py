"""What happened when we tested a peer: the answer of a C-ECHO, or of the QIDO-RS query a
DICOMweb peer gets instead (`verification.echo_peer`, `dicomweb_peer.qido_echo`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EchoResult:
    """What happened when we sent a C-ECHO."""

    ok: bool
    target: str
    round_trip_ms: float | None = None
    reason: str = ""
    service: str = "C-ECHO"  # "QIDO-RS" for a DICOMweb peer

    def __str__(self) -> str:
        if self.ok:
            return f"{self.service} {self.target}: success, round trip " \
                   f"{self.round_trip_ms:.1f} ms"
        return f"{self.service} {self.target}: failed: {self.reason}"
