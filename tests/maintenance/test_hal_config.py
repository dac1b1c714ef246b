"""The [hal], [hal.leds], [hal.panel], [console] and [network] keys: refusals name the file,
the key and the reason; a `pi` board that cannot start fails its components loudly while the
DICOM service keeps answering."""

from __future__ import annotations

import pytest

from appliance.config.loader import load_file
from appliance.core.errors import ConfigError
from tests.conftest import echoscu


@pytest.mark.parametrize("sections, expected", [
    ({"hal": {"leds": {"power": 40}}}, "hal.leds.power: must be a BCM GPIO number from 2 to 27"),
    ({"hal": {"leds": {"fault": 5}}}, "hal: Value error, GPIO 5 is used twice"),
    ({"hal": {"panel": {"size": "16x4"}}}, "hal.panel.size:"),
    ({"hal": {"panel": {"display": "oled"}}}, "hal.panel.display:"),
    ({"hal": {"panel": {"i2c_address": 7}}}, "hal.panel.i2c_address: must be between"),
    ({"hal": {"panel": {"long_press": 0.0}}}, "hal.panel.long_press: must be more than 0"),
    ({"hal": {"pin_factory": "wiringpi"}}, "hal.pin_factory:"),
    ({"hal": {"leds": {"colour": "red"}}}, "hal.leds.colour:"),
    ({"console": {"url": "/dev/ttyUSB0"}}, "console: Value error, a PIN (console.pin"),
    ({"console": {"url": "/dev/ttyUSB0", "pin": "12ab"}}, "console.pin: Value error, PIN must"),
    ({"console": {"baudrate": 1234}}, "console.baudrate: Value error, must be 9600"),
    ({"network": {"mode": "static"}}, 'network: Value error, mode "static" needs'),
    ({"network": {"mode": "static", "address": "10.0.0.2", "netmask": "255.0.255.0"}},
     "network.netmask: Value error, 255.0.255.0 is not a netmask"),
    ({"network": {"address": "10.0.0.300"}}, "network.address: Value error, must be an IPv4"),
    ({"network": {"mode": "manual"}}, "network.mode:"),
])
def test_bad_values_are_refused_with_file_key_and_reason(config_file, sections, expected):
    path = config_file(sections)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    line = caught.value.problems[0]
    assert line.startswith(f"{path}: ") and expected.replace("Value error, ", "") in \
        line.replace("Value error, ", ""), line


def test_defaults_and_documented_keys(config_file):
    config = load_file(config_file({"console": {"url": "/dev/ttyAMA0", "pin": "1234"}}))
    assert (config.hal.leds.power, config.hal.leds.activity, config.hal.leds.fault) == \
        (17, 27, 22)
    assert config.hal.panel.size == "16x2" and config.console.baudrate == 115200
    assert config.network.mode == "dhcp"


def test_pi_backend_that_cannot_start_fails_loudly_and_dicom_keeps_running(appliance):
    proc, port, _ = appliance({"hal": {"backend": "pi"}})
    log = proc.wait_log('or set [hal] backend = "sim" to run without the board')
    assert "leds failed" in log and "panel failed" in log
    assert "SimPinFactory" not in log  # no silent fallback
    assert echoscu(port).returncode == 0
