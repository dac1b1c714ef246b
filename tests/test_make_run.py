"""The README's promise: `make run` brings up an appliance that answers
`echoscu -aec EDGEBOX 127.0.0.1 11112` on the development defaults."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import REPO, echoscu


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(300)
def test_make_run_answers_echoscu_on_the_default_port(tmp_path):
    if port_in_use(11112):
        pytest.skip("something already listens on 11112 on this machine")
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    env = {k: v for k, v in os.environ.items()
           if k not in ("APPLIANCE_CONFIG", "NOTIFY_SOCKET", "MAKEFLAGS", "MAKELEVEL")}
    log = open(tmp_path / "make-run.log", "wb")
    proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        result = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"make run exited early:\n{(tmp_path / 'make-run.log').read_text()}")
            if port_in_use(11112):
                result = echoscu(11112, "EDGEBOX")
                break
            time.sleep(0.5)
        assert result is not None, "make run never listened on 11112"
        assert result.returncode == 0, result.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


TEST_ONLY_PACKAGES = {"chromium", "chromium-driver", "orthanc", "orthanc-dicomweb", "cups",
                      "rauc", "dbus", "squashfs-tools", "dcmtk"}


def planned_setup(target: str, tmp_path) -> tuple[set[str], list[str]]:
    """What `make TARGET` would install on a machine with no venv: the Debian packages its
    apt step checks and its pip install lines (from `make -n`, which runs nothing)."""
    result = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'no-venv'}"], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=True)
    packages: set[str] = set()
    for line in result.stdout.splitlines():
        if "for pkg in " in line:
            packages.update(line.split("for pkg in ", 1)[1].split(";", 1)[0].split())
    pip_lines = [line for line in result.stdout.splitlines() if "pip install" in line
                 and "--upgrade pip" not in line]
    return packages, pip_lines


def test_make_run_installs_only_what_running_needs(tmp_path):
    packages, pip_lines = planned_setup("run", tmp_path)
    assert packages and not packages & TEST_ONLY_PACKAGES, sorted(packages & TEST_ONLY_PACKAGES)
    assert {"gcc", "python3-venv", "libsystemd-dev"} <= packages
    assert pip_lines and not any("[test" in line or "dev]" in line for line in pip_lines)


def test_make_test_installs_the_test_toolchain(tmp_path):
    packages, pip_lines = planned_setup("test", tmp_path)
    assert TEST_ONLY_PACKAGES <= packages
    assert any("[test,dev]" in line for line in pip_lines)
