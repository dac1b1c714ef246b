"""The serial link opens any pyserial URL, reports a vanished port, and comes back; the line
reader echoes, masks and edits like a terminal expects."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from hal.errors import SerialLinkError
from hal.serial_link import LineReader, SerialLink


def test_loop_url_round_trip():
    link = SerialLink("loop://")
    link.open()
    link.write("status\n")
    assert link.read(64) == b"status\r\n"
    link.close()


def test_socket_url_round_trip():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    link = SerialLink(f"socket://127.0.0.1:{port}")
    link.open()
    thread.join(5)
    accepted[0].sendall(b"hi")
    received = b""
    for _ in range(20):
        received += link.read(2)
        if len(received) >= 2:
            break
    assert received == b"hi"
    link.close()
    accepted[0].close()
    server.close()


def test_missing_device_is_a_clear_error(tmp_path):
    link = SerialLink(str(tmp_path / "ttyUSB0"))
    with pytest.raises(SerialLinkError, match="cannot open serial port"):
        link.open()
    assert link.reopen() is False


def test_unplugged_pty_raises_and_replugged_one_reopens(tmp_path):
    path = tmp_path / "ttyUSB0"
    master, slave = os.openpty()
    path.symlink_to(os.ttyname(slave))
    link = SerialLink(str(path))
    link.open()
    os.close(slave)
    os.close(master)  # the adapter is pulled out
    with pytest.raises(SerialLinkError, match="went away"):
        for _ in range(20):
            link.read()
    assert not link.is_open
    path.unlink()
    master, slave = os.openpty()
    path.symlink_to(os.ttyname(slave))
    assert link.reopen()
    os.write(master, b"x")
    assert link.read() == b"x"
    link.close()
    os.close(master)
    os.close(slave)


def test_line_reader_echoes_edits_and_masks():
    reader = LineReader()
    echo, lines = reader.feed(b"helx\x7fp\r\n")
    assert lines == ["help"]
    assert echo == b"helx\b \bp\r\n"
    reader.mask = True
    echo, lines = reader.feed(b"1234\r")
    assert echo == b"****\r\n" and lines == ["1234"]
    reader.mask = False
    assert reader.feed(b"\nabc\x15x\n") == (b"abc" + b"\b \b" * 3 + b"x\r\n", ["x"])
