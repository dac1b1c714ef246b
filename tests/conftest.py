"""Shared fixtures: free ports, config files, a running `appliance run` process with its own
systemd notify socket, and DCMTK peers. All traffic stays on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tomli_w

REPO = Path(__file__).resolve().parents[1]
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}  # Debian's DCMTK disables Nagle only when asked


def free_port() -> int:
    """A TCP port no socket on any address uses now. Bound on the wildcard address, not on
    127.0.0.1: the fuzz tests' thousands of connections from 127.0.1.x leave TIME_WAIT sockets
    that a 127.0.0.1 bind does not conflict with, but a peer listening on every address
    (storescp, Orthanc) does, and then cannot start."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def connect_loopback(port: int, source: str = "127.0.0.1", timeout: float = 10.0
                     ) -> socket.socket:
    """A TCP connection to 127.0.0.1:port from `source` (any 127.x.y.z address is loopback, so
    a test can play several hosts)."""
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def write_config(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data))
    return path


def echoscu(port: int, called: str = "EDGEBOX", calling: str = "ECHOSCU",
            *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", called, *extra, "127.0.0.1", str(port)],
        capture_output=True, text=True, env=DCMTK_ENV, timeout=30)


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="nfy", dir="/tmp")  # sun_path is short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait_for(self, predicate, timeout: float = 20.0) -> str:
        """Read messages until one satisfies `predicate`; return it."""
        deadline = time.monotonic() + timeout
        for message in self.messages:
            if predicate(message):
                return message
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536).decode()
            except TimeoutError:
                break
            self.messages.append(data)
            if predicate(data):
                return data
        raise AssertionError(f"no matching notify message within {timeout}s; got {self.messages}")

    def drain(self) -> list[str]:
        self.sock.settimeout(0.0)
        try:
            while True:
                self.messages.append(self.sock.recv(65536).decode())
        except (BlockingIOError, TimeoutError):
            pass
        return self.messages

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ApplianceProcess:
    """`python -m appliance run --config FILE` in a subprocess, ready when it says READY=1."""

    def __init__(self, config_path: Path, log_path: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.log_path = log_path
        self.notify = NotifySocket()
        full_env = {**os.environ, "NOTIFY_SOCKET": self.notify.path, **(env or {})}
        full_env.pop("JOURNAL_STREAM", None)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--config", str(config_path)],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=config_path.parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> str:
        try:
            return self.notify.wait_for(lambda m: "READY=1" in m, timeout)
        except AssertionError:
            raise AssertionError(f"appliance not ready; log:\n{self.log()}") from None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log within {timeout}s:\n{self.log()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.notify.close()
        return self.proc.returncode


@pytest.fixture
def appliance(tmp_path):
    """Factory: start an appliance with the given config sections on a free DICOM port.

    Returns (process, port, config_path); every process is stopped after the test.
    """
    started: list[ApplianceProcess] = []

    def start(sections: dict | None = None, env: dict[str, str] | None = None):
        sections = {key: dict(value) if isinstance(value, dict) else value
                    for key, value in (sections or {}).items()}
        dicom = sections.setdefault("dicom", {})
        dicom.setdefault("port", free_port())
        dicom.setdefault("bind", "127.0.0.1")
        web = sections.setdefault("web", {})  # the web page, too, only on 127.0.0.1
        web.setdefault("bind", "127.0.0.1")
        web.setdefault("port", free_port())
        sections.setdefault("device", {}).setdefault("data_dir", str(tmp_path / "data"))
        config_path = write_config(tmp_path / f"appliance{len(started)}.toml", sections)
        proc = ApplianceProcess(config_path, tmp_path / f"appliance{len(started)}.log", env)
        started.append(proc)
        proc.wait_ready()
        return proc, dicom["port"], config_path

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def pki(tmp_path) -> Path:
    """A throwaway PKI (tests/pki.py): the hospital CA `ca` with the box's certificate `box`
    and a modality's `modality`, and a stranger's CA `other-ca` with `stranger` (CT9)."""
    from tests.pki import make_pki

    directory = make_pki(tmp_path / "pki", {"box": "edgebox", "modality": "CT1"})
    return make_pki(directory, {"stranger": "CT9"}, ca="other-ca", ca_name="Other CA")


@pytest.fixture
def storescp(tmp_path):
    """Factory: DCMTK storescp (answers C-ECHO) as a real peer on a free port."""
    procs: list[subprocess.Popen] = []

    def start(aet: str = "DCMTKSCP") -> int:
        port = free_port()
        out = tmp_path / f"storescp{len(procs)}"
        out.mkdir()
        proc = subprocess.Popen(["storescp", "-aet", aet, "-od", str(out), str(port)],
                                env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_listening(port)
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def listening(port: int) -> bool:
    """Whether something listens on TCP `port` now (read from /proc/net, without connecting)."""
    needle = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if needle in f"{fields[1]} " and fields[3] == "0A":  # 0A = LISTEN
                return True
    return False


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:port (checked without connecting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on port {port} after {timeout}s")


def wait_not_listening(port: int, timeout: float = 10.0) -> None:
    """Wait until nothing listens on `port` any more (checked without connecting, so the
    check itself opens no connection a closing listener would have to deal with)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not listening(port):
            return
        time.sleep(0.02)
    raise AssertionError(f"port {port} still listening after {timeout}s")


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = ""):
    """Call `predicate` until it returns something true, and return that; fail after
    `timeout` seconds (the way to wait for a condition instead of sleeping)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s: {what or predicate}")


@pytest.fixture
def restore_root_logging():
    """The root logger's handlers and level put back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
