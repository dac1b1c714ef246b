"""The DICOM server component (the native engine) in-process: socket options, graceful stop,
live reconfiguration."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ComponentFailure
from appliance.dicom.engine_server import EngineServer
from appliance.dicom.sockets import SCU_HANDLERS
from appliance.dicom.verification import VerificationService
from tests.conftest import echoscu, free_port, wait_not_listening
from tests.dicom import port_probe


def make_config(**dicom) -> ApplianceConfig:
    dicom.setdefault("port", free_port())
    dicom.setdefault("bind", "127.0.0.1")
    return ApplianceConfig.model_validate({"dicom": dicom})


@pytest.fixture
def server():
    servers = []

    def start(**dicom) -> EngineServer:
        srv = EngineServer(make_config(**dicom), [VerificationService()])
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop(timeout=1)


def associate(port: int, called: str = "EDGEBOX", handlers=()):
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=called, evt_handlers=list(handlers))


def nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def accepted_socket(peer: tuple) -> socket.socket:
    """The engine's socket (in this process) whose peer is `peer`, as a duplicate."""
    for sock in port_probe.own_sockets():
        try:
            if sock.family == socket.AF_INET and sock.getpeername() == peer:
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError(f"no socket connected to {peer}")


def test_tcp_nodelay_is_set_on_accepted_and_requested_sockets(server):
    srv = server()
    assoc = associate(srv.port, handlers=SCU_HANDLERS)
    try:
        assert assoc.is_established
        accepted = accepted_socket(assoc.dul.socket.socket.getsockname())
        try:
            assert nodelay(accepted) == 1
        finally:
            accepted.close()
        assert nodelay(assoc.dul.socket.socket) == 1
    finally:
        assoc.release()


def test_stop_lets_an_open_association_finish_and_refuses_new_ones(server):
    srv = server()
    port = srv.port
    assoc = associate(port)
    assert assoc.is_established
    stopper = threading.Thread(target=srv.stop, kwargs={"timeout": 10})
    stopper.start()
    wait_not_listening(port)
    # The listener is closed, but the association in flight still works.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    stopper.join(5)
    assert not stopper.is_alive()


def test_stop_aborts_associations_still_open_after_the_grace_time(server):
    srv = server()
    assoc = associate(srv.port)
    assert assoc.is_established
    started = time.monotonic()
    srv.stop(timeout=0.5)
    assert time.monotonic() - started < 5
    assoc.join(5)
    assert assoc.is_aborted


def test_ae_title_change_applies_live_without_rebinding(server):
    srv = server(ae_title="FIRST")
    port = srv.port
    listener = srv.engine
    srv.reconfigure(make_config(ae_title="SECOND", port=port))
    assert srv.engine is listener
    assert echoscu(port, "FIRST").returncode != 0
    assert echoscu(port, "SECOND").returncode == 0


def test_port_change_moves_the_listener(server):
    srv = server()
    old_port, new_port = srv.port, free_port()
    srv.reconfigure(make_config(port=new_port))
    assert echoscu(new_port).returncode == 0
    wait_not_listening(old_port)  # the old listener is closed by a thread of its own
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", old_port), timeout=2).close()


def test_port_in_use_is_a_clear_component_failure():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = EngineServer(make_config(port=port), [VerificationService()])
        with pytest.raises(ComponentFailure, match=f"cannot listen on 127.0.0.1:{port}"):
            srv.start()


def test_check_fails_when_the_listener_is_gone(server):
    srv = server()
    srv.check()
    srv.engine.stop(0)
    with pytest.raises(ComponentFailure, match="listener stopped"):
        srv.check()
