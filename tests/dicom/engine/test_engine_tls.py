"""DICOM over TLS on the engine's second port (issue 15), with DCMTK's echoscu/storescu as the
modality: a client certificate from the configured CA is accepted, none or one from another
CA is refused in the handshake, a plain client on the TLS port gets nothing, and plain and TLS
associations are served at the same time."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from appliance.dicom.engine import EngineTls
from tests.conftest import DCMTK_ENV
from tests.pki import dcmtk_tls, reissue
from tests.storage.dicom_files import make_study


def tls_engine(engine, pki: Path, **tls):
    settings = EngineTls(port=0, certificate=str(pki / "box.pem"),
                         private_key=str(pki / "box.key"), ca_certificates=str(pki / "ca.pem"),
                         **tls)
    return engine(tls=settings)


def echoscu(port: int, *tls: str) -> subprocess.CompletedProcess:
    return subprocess.run(["echoscu", "-aec", "EDGEBOX", *tls, "127.0.0.1", str(port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=60)


def test_a_modality_with_a_certificate_from_the_ca_is_served(engine, pki):
    dicom_engine, _ = tls_engine(engine, pki)
    assert dicom_engine.tls_port > 0 and dicom_engine.tls_port != dicom_engine.port
    result = echoscu(dicom_engine.tls_port, *dcmtk_tls(pki, "modality"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("client", ["no certificate", "another CA's", "plain DICOM"])
def test_other_clients_are_refused_on_the_tls_port(engine, pki, client):
    dicom_engine, _ = tls_engine(engine, pki)
    args = {"no certificate": ["+tla", "+cf", str(pki / "ca.pem")],
            "another CA's": dcmtk_tls(pki, "stranger"),
            "plain DICOM": []}[client]
    result = echoscu(dicom_engine.tls_port, *args)
    assert result.returncode != 0, result.stdout
    # and the port still serves the next, good client
    good = echoscu(dicom_engine.tls_port, *dcmtk_tls(pki, "modality"))
    assert good.returncode == 0, good.stderr


def test_plain_and_tls_at_once_store_bit_identical(engine, pki, tmp_path):
    dicom_engine, receiver = tls_engine(engine, pki)
    files = make_study(tmp_path / "study", 4)
    tls = subprocess.Popen(["storescu", "-aec", "EDGEBOX", *dcmtk_tls(pki, "modality"),
                            "127.0.0.1", str(dicom_engine.tls_port), *map(str, files[:2])],
                           env=DCMTK_ENV, stderr=subprocess.PIPE, text=True)
    plain = subprocess.run(["storescu", "-aec", "EDGEBOX", "127.0.0.1", str(dicom_engine.port),
                            *map(str, files[2:])], env=DCMTK_ENV, capture_output=True,
                           text=True, timeout=60)
    assert tls.wait(60) == 0, tls.stderr.read()
    assert plain.returncode == 0, plain.stderr
    assert len(receiver.images) == 4


def test_the_tls_files_are_checked_at_start(engine, pki):
    (pki / "box.key").write_bytes((pki / "modality.key").read_bytes())
    with pytest.raises(RuntimeError, match="does not belong to the certificate"):
        tls_engine(engine, pki)


def tls_appliance(tmp_path: Path, pki: Path, box: Path):
    """`appliance run` with TLS on (started; `wait_ready()` it), the files box.pem/box.key in
    `box`; (process, plain port, TLS port)."""
    from tests.conftest import ApplianceProcess, free_port, write_config

    port, tls_port = free_port(), free_port()
    config = write_config(tmp_path / "appliance.toml", {
        "device": {"data_dir": str(tmp_path / "data")},
        "dicom": {"port": port, "bind": "127.0.0.1",
                  "tls": {"enabled": True, "port": tls_port,
                          "certificate": str(box / "box.pem"),
                          "private_key": str(box / "box.key"),
                          "ca_certificates": str(pki / "ca.pem")}},
        "web": {"bind": "127.0.0.1", "port": free_port()}})
    return ApplianceProcess(config, tmp_path / "appliance.log"), port, tls_port


def test_appliance_run_serves_tls_beside_the_plain_port(pki, tmp_path):
    appliance, port, tls_port = tls_appliance(tmp_path, pki, pki)
    try:
        appliance.wait_ready()
        good = echoscu(tls_port, *dcmtk_tls(pki, "modality"))
        assert good.returncode == 0, good.stderr
        assert echoscu(port).returncode == 0
        assert echoscu(tls_port, "+tla", "+cf", str(pki / "ca.pem")).returncode != 0
    finally:
        appliance.stop()
    log = (tmp_path / "appliance.log").read_text()
    assert f"TLS on port {tls_port}" in log
    assert "(TLS, /CN=CT1)" in log  # the association line names the client certificate


# -- a running engine given new TLS settings ----------------------------------------------------

def renewed(pki: Path, stem: str = "box-2027") -> tuple[Path, Path]:
    """A new certificate for the box from the other CA (so a client trusting only that CA
    tells the new certificate from the old), as cert.pem/key files."""
    reissue(pki, stem, "edgebox-2027", "other-ca")
    return pki / f"{stem}.pem", pki / f"{stem}.key"


def trusted_by(pki: Path, port: int, ca: str) -> bool:
    """Whether a C-ECHO over TLS works for a modality (its certificate from the hospital CA)
    that trusts only the server certificates of `ca`: tells which certificate the box shows."""
    return echoscu(port, "+tls", str(pki / "modality.key"), str(pki / "modality.pem"),
                   "+cf", str(pki / f"{ca}.pem")).returncode == 0


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def plain_association(port: int):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="CT1")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    assert assoc.is_established
    return assoc


def test_a_renewed_certificate_serves_new_handshakes_and_open_associations_stay(engine, pki):
    dicom_engine, _ = tls_engine(engine, pki)
    tls_port = dicom_engine.tls_port
    assert trusted_by(pki, tls_port, "ca") and not trusted_by(pki, tls_port, "other-ca")
    assoc = plain_association(dicom_engine.port)
    try:
        certificate, key = renewed(pki)
        dicom_engine.set_tls(EngineTls(port=0, certificate=str(certificate),
                                       private_key=str(key),
                                       ca_certificates=str(pki / "ca.pem")))
        assert dicom_engine.tls_port == tls_port  # the same listener
        assert trusted_by(pki, tls_port, "other-ca") and not trusted_by(pki, tls_port, "ca")
        assert assoc.send_c_echo().Status == 0x0000  # the plain association never noticed
    finally:
        assoc.release()


def test_a_new_tls_port_gets_a_new_listener_and_the_old_one_closes(engine, pki):
    from tests.conftest import free_port

    dicom_engine, _ = tls_engine(engine, pki)
    old_port, new_port = dicom_engine.tls_port, free_port()
    dicom_engine.set_tls(EngineTls(port=new_port, certificate=str(pki / "box.pem"),
                                   private_key=str(pki / "box.key"),
                                   ca_certificates=str(pki / "ca.pem")))
    assert dicom_engine.tls_port == new_port
    assert trusted_by(pki, new_port, "ca")
    deadline = time.monotonic() + 5  # the accept loop closes the old one at its next turn
    while time.monotonic() < deadline and port_open(old_port):
        time.sleep(0.05)
    assert not port_open(old_port)
    assert not trusted_by(pki, old_port, "ca")
    assert echoscu(dicom_engine.port).returncode == 0


def test_unusable_files_leave_the_previous_certificate_serving_and_tls_can_be_closed(
        engine, pki):
    dicom_engine, _ = tls_engine(engine, pki)
    tls_port = dicom_engine.tls_port
    with pytest.raises(RuntimeError, match="does not belong to the certificate"):
        dicom_engine.set_tls(EngineTls(port=0, certificate=str(pki / "box.pem"),
                                       private_key=str(pki / "modality.key"),
                                       ca_certificates=str(pki / "ca.pem")))
    assert trusted_by(pki, tls_port, "ca")
    dicom_engine.set_tls(None)
    assert dicom_engine.tls_port == -1
    assert not trusted_by(pki, tls_port, "ca")
    assert echoscu(dicom_engine.port).returncode == 0


def test_appliance_run_applies_a_replaced_certificate_on_reload_without_dropping_anyone(
        pki, tmp_path):
    import os
    import signal

    live = tmp_path / "live"
    live.mkdir()
    for name in ("box.pem", "box.key"):
        (live / name).write_bytes((pki / name).read_bytes())
    appliance, port, tls_port = tls_appliance(tmp_path, pki, live)
    try:
        appliance.wait_ready()
        assert trusted_by(pki, tls_port, "ca")
        assoc = plain_association(port)
        # The technician's way: new files in place of the old (same paths), then a reload.
        certificate, key = renewed(pki)
        for source, target in ((certificate, "box.pem"), (key, "box.key")):
            (live / f"{target}.new").write_bytes(source.read_bytes())
            os.replace(live / f"{target}.new", live / target)
        appliance.signal(signal.SIGHUP)
        appliance.wait_log("now with the certificate")
        assert trusted_by(pki, tls_port, "other-ca") and not trusted_by(pki, tls_port, "ca")
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
    finally:
        appliance.stop()
    assert "DICOM listener moving" not in (tmp_path / "appliance.log").read_text()


@pytest.mark.parametrize("client, served", [("modality", True), ("stranger", False)])
def test_pynetdicom_as_a_tls_client(engine, pki, client, served):
    """Our own SCU side (pynetdicom with the ssl context of tls_client) against the engine."""
    from appliance.dicom.config import DicomTlsConfig
    from appliance.dicom.verification import echo

    dicom_engine, _ = tls_engine(engine, pki)
    tls = DicomTlsConfig(certificate=str(pki / f"{client}.pem"),
                         private_key=str(pki / f"{client}.key"),
                         ca_certificates=str(pki / "ca.pem"))
    result = echo("127.0.0.1", dicom_engine.tls_port, "EDGEBOX", "CT1", timeout=5, tls=tls)
    assert result.ok is served, result.reason


def test_appliance_run_moves_the_plain_port_with_tls_on(pki, tmp_path):
    """A new plain port on reload while TLS is on (the same TLS port): the new listener takes
    the TLS port over from the old one, both ports serve afterwards."""
    import signal

    from tests.conftest import free_port

    appliance, port, tls_port = tls_appliance(tmp_path, pki, pki)
    try:
        appliance.wait_ready()
        new_port = free_port()
        config = appliance.config_path
        config.write_text(config.read_text().replace(f"port = {port}\n",
                                                     f"port = {new_port}\n", 1))
        appliance.signal(signal.SIGHUP)
        appliance.wait_log("configuration reloaded")
        assert echoscu(new_port).returncode == 0
        assert trusted_by(pki, tls_port, "ca")
    finally:
        appliance.stop()
    log = (tmp_path / "appliance.log").read_text()
    assert "DICOM listener moving" in log and "cannot listen" not in log
