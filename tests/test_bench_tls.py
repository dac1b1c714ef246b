"""The TLS benchmark's set-up works on its own: the throwaway PKI's certificates are accepted by
`storescp +tls` and the appliance's TLS port as bench/bench_tls.py starts them, so `make bench`
measures DICOM over TLS and not a refusal. Speed is not asserted here."""

from __future__ import annotations

import pytest
from pydicom.uid import CTImageStorage

from bench.bench_storage import Receiver, make_images, send
from bench.bench_tls import cases
from tests.pki import make_pki


@pytest.mark.parametrize("kind", ["dcmtk", "appliance"])
def test_the_bench_pki_carries_images_over_tls(tmp_path, kind):
    pki = make_pki(tmp_path / "pki", {"server": "edgebox", "client": "BENCH"})
    assert cases(pki)[f"{kind}+tls"] == (kind, pki)
    files = make_images(tmp_path / "ct", 2, 64, 64, CTImageStorage, "CT")
    receiver = Receiver(kind, tmp_path, pki)
    try:
        send(receiver.port, files, 1, pki=pki)
        stored = [p for p in receiver.out.rglob("*")
                  if p.is_file() and p.read_bytes()[128:132] == b"DICM"]
        assert len(stored) == 2
        with pytest.raises(RuntimeError, match="storescu failed"):
            send(receiver.port, files, 1)  # plain DICOM on the TLS port gets nowhere
    finally:
        receiver.stop()
