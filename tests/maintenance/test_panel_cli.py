"""`appliance panel`: the same menus in a terminal, keys for the buttons."""

from __future__ import annotations

import subprocess
import sys

from appliance.config.loader import load_file
from tests.conftest import REPO


def run_panel(config, keys: str):
    return subprocess.run([sys.executable, "-m", "appliance", "panel", "--config", str(config)],
                          input=keys, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_keys_walk_the_menu_and_change_the_ae_title(config_file):
    path = config_file({"dicom": {"ae_title": "EDGEBOX"}})
    result = run_panel(path, "oo" + "o" * 6 + "w" + "O" + "q")
    assert result.returncode == 0, result.stderr
    assert "|EDGEBOX         |\n|Port 11112      |" in result.stdout
    assert "|>AE title       |" in result.stdout
    assert "|EDGEBOY         |" in result.stdout
    assert "|AE title saved  |" in result.stdout
    assert load_file(path).dicom.ae_title == "EDGEBOY"


def test_arrow_keys_and_refusal_on_screen(config_file):
    path = config_file()
    # right arrow = OK: menu, AE title; down on 'E' -> 'D'; long OK saves "DDGEBOX"
    result = run_panel(path, "\x1b[C\x1b[C\x1b[BO")
    assert "|DDGEBOX         |" in result.stdout
    assert load_file(path).dicom.ae_title == "DDGEBOX"


def test_reboot_from_the_terminal_is_only_recorded(config_file):
    path = config_file()
    result = run_panel(path, "o" + "s" * 5 + "oo")
    assert result.returncode == 0
    assert "|Rebooting       |" in result.stdout
    assert "|reboot recorded |" in result.stdout


def test_bad_config_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[hal.panel]\nsize = \"8x1\"\n")
    result = run_panel(bad, "q")
    assert result.returncode == 2 and "hal.panel.size" in result.stderr
