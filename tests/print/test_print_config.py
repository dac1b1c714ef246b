"""Bad [print] / [[printers]] settings are refused with the file, the key and the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance.config.loader import load_file
from appliance.core.errors import ConfigError

PACS = '[[peers]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 4242\n'
DEST = '[[destinations]]\npeer = "pacs"\n'
BAD = {
    "unknown print key": ("[print]\nmax_qeue = 5\n", "print.max_qeue",
                          "unknown key (did you mean 'max_queue'?)"),
    "max_queue 0": ("[print]\nmax_queue = 0\n", "print.max_queue", "between 1 and 10000"),
    "preview too small": ("[print]\npreview_px = 8\n", "print.preview_px", "between 32 and 2048"),
    "status interval 0": ("[print]\nstatus_interval = 0\n", "print.status_interval", ""),
    "printer unknown": ('[print]\nprinter = "laser"\n', "print",
                        "printer 'laser' is not one of the [[printers]] (known: default)"),
    "unknown driver": ('[[printers]]\nname = "a"\ndriver = "fax"\n', "printers[0].driver",
                       "must be one of 'file', 'cups', 'dicom', 'pacs' or 'sim'"),
    "unknown printers key": ('[[printers]]\nname = "a"\ndpii = 300\n', "printers[0].dpii",
                             "unknown key"),
    "bad film size": ('[[printers]]\nname = "a"\nfilm_sizes = ["14INX17IN", "LETTER"]\n',
                      "printers[0].film_sizes[1]", "'LETTER' is not a Film Size ID"),
    "bad medium": ('[[printers]]\nname = "a"\ndefault_medium = "GLASS"\n',
                   "printers[0].default_medium", "'GLASS' is not a Medium Type"),
    "dpi 10": ('[[printers]]\nname = "a"\ndpi = 10\n', "printers[0].dpi", "between 50 and 1200"),
    "density 900": ('[[printers]]\nname = "a"\nmax_density = 900\n', "printers[0].max_density",
                    "between 0 and 500"),
    "densities reversed": ('[[printers]]\nname = "a"\nmin_density = 250\nmax_density = 200\n',
                           "printers[0]", "max_density (200) must be greater than min_density"),
    "default size not offered": ('[[printers]]\nname = "a"\nfilm_sizes = ["A4"]\n',
                                 "printers[0]", "default_film_size 14INX17IN is not in film_sizes"),
    "bad display format": ('[[printers]]\nname = "a"\ndisplay_formats = ["SLIDE"]\n',
                           "printers[0].display_formats[0]", "must be one of"),
    "cups without queue": ('[[printers]]\nname = "a"\ndriver = "cups"\n', "printers[0]",
                           "the cups driver needs cups_queue"),
    "bad cups server": ('[[printers]]\nname = "a"\ndriver = "cups"\ncups_queue = "q"\n'
                        'cups_server = "localhost"\n', "printers[0].cups_server",
                        "must be HOST:PORT"),
    "dicom without peer": ('[[printers]]\nname = "a"\ndriver = "dicom"\n', "printers[0]",
                           "the dicom driver needs peer"),
    "unknown peer": (PACS + '[[printers]]\nname = "a"\ndriver = "dicom"\npeer = "ris"\n',
                     "printers", "printers[0].peer 'ris' is not one of the [[peers]] "
                     "(known: pacs)"),
    "bad AE title": ('[[printers]]\nname = "a"\nae_title = "ABCDEFGHIJKLMNOPQ"\n',
                     "printers[0].ae_title", "at most 16 characters"),
    "AE title is ours": ('[[printers]]\nname = "a"\nae_title = "EDGEBOX"\n', "printers",
                         "printers[0].ae_title EDGEBOX is already used by dicom.ae_title"),
    "AE title twice": ('[[printers]]\nname = "a"\nae_title = "LASER"\n'
                       '[[printers]]\nname = "b"\nae_title = "LASER"\n', "printers",
                       "printers[1].ae_title LASER is already used by printers[0].ae_title"),
    "name twice": ('[[printers]]\nname = "a"\n[[printers]]\nname = "a"\n', "printers",
                   "printers[1].name 'a' is used by another profile"),
    "pacs without destination": (PACS + '[[printers]]\nname = "a"\ndriver = "pacs"\n',
                                 "printers", "printers[0] (a) uses the pacs driver, which sends "
                                 "films through the forwarder: add a [[destinations]] entry"),
    "pacs with peer": (PACS + DEST + '[[printers]]\nname = "a"\ndriver = "pacs"\n'
                       'peer = "pacs"\n', "printers[0]", "the pacs driver sends through the "
                       "forwarder's [[destinations]]; remove peer"),
    "bad uid root": ('[[printers]]\nname = "a"\npacs_uid_root = "1.02.3"\n',
                     "printers[0].pacs_uid_root", "must be a UID root"),
    "lookback 0": ('[[printers]]\nname = "a"\npacs_lookback_hours = 0\n',
                   "printers[0].pacs_lookback_hours", "more than 0 and at most 8760 hours"),
    "illumination 0": ('[[printers]]\nname = "a"\nillumination = 0\n',
                       "printers[0].illumination", "luminance above 0"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_print_setting_is_refused_with_file_key_and_reason(tmp_path, case):
    text, key, reason = BAD[case]
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert len(err.value.problems) == 1, err.value.problems
    line = err.value.problems[0]
    assert line.startswith(f"{path}: {key}: "), line
    assert reason in line, line


def test_good_print_settings_load(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(PACS + DEST + '[print]\nprinter = "b"\n'
                    '[[printers]]\nname = "a"\ndriver = "sim"\nae_title = "LASER"\n'
                    '[[printers]]\nname = "b"\ndriver = "pacs"\n'
                    'pacs_uid_root = "1.2.3.4."\npacs_lookback_hours = 12\n')
    config = load_file(path)
    assert [p.ae_title for p in config.printers] == ["LASER", ""]
    assert config.printers[1].pacs_uid_root == "1.2.3.4."
    assert config.printers[1].pacs_lookback_hours == 12.0
    assert config.print.printer == "b"


def test_config_check_command_refuses_a_bad_print_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[printers]]\nname = "a"\ndpi = 5000\n')
    result = subprocess.run([sys.executable, "-m", "appliance", "config", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"appliance: {path}: printers[0].dpi: must be "
                                     "between 50 and 1200, got 5000"), result.stderr
