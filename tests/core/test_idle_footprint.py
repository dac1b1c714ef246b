"""What an idle `appliance run` keeps loaded: libraries only a feature it does not use needs stay
out of the process (issue 14: idle RSS)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import echoscu

#: cryptography's native library: mapped once anything imports cryptography.
CRYPTOGRAPHY_LIBRARY = "cryptography/hazmat/bindings/_rust"


def mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_box_without_tls_never_loads_cryptography(appliance):
    proc, port, _ = appliance()
    proc.wait_log("web page at http://127.0.0.1:")
    assert echoscu(port).returncode == 0
    assert CRYPTOGRAPHY_LIBRARY not in mapped(proc.pid)


def test_a_box_with_the_web_page_on_https_loads_it(appliance):
    """The check above can see cryptography: HTTPS makes the web page's certificate with it."""
    proc, port, _ = appliance({"web": {"https": True}})
    proc.wait_log("web page at https://127.0.0.1:")
    assert CRYPTOGRAPHY_LIBRARY in mapped(proc.pid)
