"""`appliance run` as a process: systemd notifications, SIGHUP reload, SIGTERM, and a failing
component restarted while the DICOM server keeps answering."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import echoscu, free_port


def test_ready_and_watchdog_arrive_on_notify_socket(appliance):
    proc, port, _ = appliance(env={"WATCHDOG_USEC": "400000"})  # ping every 0.2 s
    ready = proc.notify.wait_for(lambda m: "READY=1" in m)
    assert "STATUS=" in ready and "dicom" in ready
    proc.notify.wait_for(lambda m: m == "WATCHDOG=1", timeout=5)
    count = 0
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        proc.notify.wait_for(lambda m: m == "WATCHDOG=1", timeout=2)
        count += 1
        proc.notify.messages.clear()
    assert count >= 5
    assert echoscu(port).returncode == 0


def test_ready_is_sent_only_when_the_dicom_port_accepts(appliance):
    proc, port, _ = appliance()
    # wait_ready() already saw READY=1: the listener must take a connection right now.
    assert echoscu(port).returncode == 0


def test_sighup_with_new_ae_title_takes_effect_in_the_same_process(appliance):
    proc, port, config = appliance({"dicom": {"ae_title": "OLDTITLE"}})
    pid = proc.pid
    assert echoscu(port, "OLDTITLE").returncode == 0
    config.write_text(config.read_text().replace('"OLDTITLE"', '"NEWTITLE"'))
    proc.notify.messages.clear()
    proc.signal(signal.SIGHUP)
    proc.notify.wait_for(lambda m: "READY=1" in m)
    assert proc.proc.poll() is None and proc.pid == pid
    assert echoscu(port, "OLDTITLE").returncode != 0
    assert echoscu(port, "NEWTITLE").returncode == 0


def test_sighup_with_new_port_moves_the_listener(appliance):
    proc, port, config = appliance()
    new_port = free_port()
    config.write_text(config.read_text().replace(f"port = {port}", f"port = {new_port}"))
    proc.notify.messages.clear()
    proc.signal(signal.SIGHUP)
    proc.notify.wait_for(lambda m: "READY=1" in m)
    assert echoscu(new_port).returncode == 0
    time.sleep(0.5)
    assert echoscu(port).returncode != 0


def test_sighup_with_a_bad_file_keeps_the_running_configuration(appliance):
    proc, port, config = appliance()
    good = config.read_text()
    config.write_text(good + "\n[dicom_typo]\nx = 1\n")
    proc.signal(signal.SIGHUP)
    log = proc.wait_log("reload refused")
    assert "dicom_typo: unknown key" in log
    assert proc.proc.poll() is None
    assert echoscu(port).returncode == 0


def test_failing_component_is_restarted_while_echo_keeps_working(appliance, tmp_path):
    data = tmp_path / "data"
    proc, port, _ = appliance({"device": {"data_dir": str(data)}})
    proc.notify.messages.clear()
    shutil.rmtree(data)
    data.write_text("the data partition is gone\n")  # start() cannot recreate it now
    proc.wait_log("datadir failed")
    proc.notify.wait_for(lambda m: "datadir: failed" in m)
    for _ in range(5):
        assert echoscu(port).returncode == 0
        time.sleep(0.2)
    proc.wait_log("restarting datadir (attempt 2)")
    data.unlink()
    data.mkdir()
    proc.notify.wait_for(lambda m: "STATUS=" in m and "degraded" not in m, timeout=30)
    assert "datadir running" in proc.log()
    assert echoscu(port).returncode == 0


def test_sigterm_lets_an_association_in_flight_finish(appliance):
    proc, port, _ = appliance()
    ae = AE(ae_title="SLOWSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    assert assoc.is_established
    proc.signal(signal.SIGTERM)
    proc.notify.wait_for(lambda m: "STOPPING=1" in m)
    time.sleep(0.5)
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert proc.proc.wait(15) == 0
    assert "outcome=released" in proc.log()


def test_logs_go_to_stderr_when_not_under_journald(appliance):
    proc, port, _ = appliance()
    assert "INFO appliance.core.supervisor: ready" in proc.log()


def test_the_web_frameworks_load_only_when_the_web_page_starts(tmp_path):
    """Cold start: FastAPI and the app take ~0.3 s to import; `appliance run` builds its
    components without them, so the DICOM port opens first (the web component starts last).
    Checked in a fresh interpreter: this one has imported FastAPI for other tests."""
    probe = ("import sys; sys.modules['requests'] = None\n"
             "from appliance.component_list import build_components\n"
             "from appliance.config.schema import ApplianceConfig\n"
             "from appliance.core.events import EventBus\n"
             "config = ApplianceConfig.model_validate({'device': {'data_dir': "
             f"{str(tmp_path)!r}}}}})\n"
             "last = build_components(config, EventBus())[-1]\n"
             "print(type(last).__name__, sorted(m for m in ('fastapi', 'starlette', 'uvicorn')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "WebComponent []"
