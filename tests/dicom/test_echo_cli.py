"""`appliance echo`: "test this peer", against real DCMTK peers and our own listener (the DICOM
server component in this process)."""

from __future__ import annotations

import socket
import threading

import pytest

from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.verification import VerificationService
from tests.config.test_config_files import appliance_cli
from tests.conftest import free_port, write_config


def peer_config(tmp_path, port, aet="DCMTKSCP"):
    return write_config(tmp_path / "peers.toml", {
        "dicom": {"ae_title": "EDGEBOX"},
        "peers": [{"name": "pacs", "ae_title": aet, "host": "127.0.0.1", "port": port}]})


def test_echo_a_configured_peer_prints_round_trip(tmp_path, storescp):
    port = storescp("DCMTKSCP")
    config = peer_config(tmp_path, port)
    result = appliance_cli("echo", "pacs", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"C-ECHO pacs DCMTKSCP@127.0.0.1:{port}: success, round trip" in result.stdout
    assert " ms" in result.stdout


def test_echo_host_port_with_called_aet(tmp_path, storescp):
    port = storescp("OTHERSCP")
    result = appliance_cli("echo", "127.0.0.1", str(port), "--aet", "OTHERSCP", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "success" in result.stdout


def test_echo_refused_connection(tmp_path):
    port = free_port()
    result = appliance_cli("echo", "127.0.0.1", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert "connection refused" in result.stderr


@pytest.fixture
def our_listener(tmp_path):
    """Our own DICOM listener (EngineServer with the Verification service) in this process on
    a free port of 127.0.0.1; returns the port."""
    config = ApplianceConfig.model_validate(
        {"dicom": {"port": free_port(), "bind": "127.0.0.1"},
         "device": {"data_dir": str(tmp_path / "data")}})
    server = EngineServer(config, [VerificationService()])
    server.start()
    yield server.port
    server.stop(timeout=1)


def test_echo_rejected_association_gives_the_reason(tmp_path, our_listener):
    port = our_listener
    result = appliance_cli("echo", "127.0.0.1", str(port), "--aet", "WRONG", cwd=tmp_path)
    assert result.returncode == 1
    assert ("association rejected: called AE title not recognised "
            "(rejected permanent, service user)") in result.stderr
    result = appliance_cli("echo", "127.0.0.1", str(port), "--aet", "EDGEBOX", cwd=tmp_path)
    assert result.returncode == 0


def test_echo_timeout_when_the_peer_never_answers(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        accepted = []
        threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
        result = appliance_cli("echo", "127.0.0.1", str(port), "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert "no association response within 1 s" in result.stderr


def test_echo_unknown_peer_name_lists_known_peers(tmp_path):
    config = peer_config(tmp_path, 104)
    result = appliance_cli("echo", "nosuch", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "no peer named 'nosuch' (known: pacs)" in result.stderr


def test_echo_bad_arguments_are_refused(tmp_path):
    assert "port must be a number" in appliance_cli("echo", "127.0.0.1", "x", cwd=tmp_path).stderr
    result = appliance_cli("echo", "127.0.0.1", "104", "--aet", "A" * 17, cwd=tmp_path)
    assert result.returncode == 2 and "--aet: AE title must be at most 16" in result.stderr


def test_echo_unknown_host_is_named(monkeypatch):
    # Resolution is faked: a real lookup would send a DNS query off this machine.
    from appliance.dicom import verification

    def no_such_host(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    result = verification.echo("no-such-host", 104, "PACS", "EDGEBOX", timeout=1)
    assert not result.ok
    assert result.reason == "unknown host name 'no-such-host'"
