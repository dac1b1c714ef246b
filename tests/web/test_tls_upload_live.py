"""A certificate uploaded on the web page reaches the running DICOM TLS listener (issue 15):
the engine serves the new certificate to new TLS connections, also on a second upload to the
same paths, while a plain association stays open throughout. DCMTK's echoscu is the modality
and tells which certificate the box shows by the one CA it trusts."""

from __future__ import annotations

import subprocess

from appliance.core.providers import Providers
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.tls_watch import TlsCertificateWatch
from appliance.dicom.verification import VerificationService
from tests.conftest import DCMTK_ENV, free_port
from tests.pki import HospitalCa, pem
from tests.web.test_tls_certificate import configured, upload


def shows_certificate_of(port: int, trusted_ca, tmp_path, modality) -> bool:
    """Whether a modality trusting only `trusted_ca` completes a C-ECHO on the TLS port."""
    (tmp_path / "trusted.pem").write_bytes(pem(trusted_ca.certificate))
    result = subprocess.run(
        ["echoscu", "-aec", "EDGEBOX", "+tls", str(modality / "ct1.key"),
         str(modality / "ct1.pem"), "+cf", str(tmp_path / "trusted.pem"), "127.0.0.1",
         str(port)], capture_output=True, text=True, env=DCMTK_ENV, timeout=60)
    return result.returncode == 0


def test_uploaded_certificates_reach_the_tls_listener_without_dropping_anyone(web, tmp_path):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    hospital, second, third = HospitalCa(), HospitalCa("Second CA"), HospitalCa("Third CA")
    modality = tmp_path / "modality"
    modality.mkdir()
    cert, key = hospital.box("CT1")
    (modality / "ct1.pem").write_bytes(cert)
    (modality / "ct1.key").write_bytes(key)
    plain_port, tls_port = free_port(), free_port()
    providers = Providers()

    def components(config, bus):
        providers.tls_certificate = TlsCertificateWatch(config, bus)
        return [providers.tls_certificate, EngineServer(config, [VerificationService()], bus)]

    toml = configured(tmp_path, hospital, enabled="true", port=tls_port)
    setup = web(f'[dicom]\nport = {plain_port}\nbind = "127.0.0.1"\n' + toml, providers,
                components)
    setup.setup_password()
    assert shows_certificate_of(tls_port, hospital, tmp_path, modality)

    ae = AE(ae_title="CT1")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", plain_port, ae_title="EDGEBOX")
    assert assoc.is_established
    try:
        for issuer, before in ((second, hospital), (third, second)):  # the 2nd: same paths
            answer = upload(setup, *issuer.box(), follow=True)
            assert answer.status_code == 200, answer.text
            setup.wait(lambda issuer=issuer: shows_certificate_of(tls_port, issuer, tmp_path,
                                                                  modality), timeout=20)
            assert not shows_certificate_of(tls_port, before, tmp_path, modality)
            assert assoc.send_c_echo().Status == 0x0000  # the plain association goes on
    finally:
        assoc.release()
