"""Loading configuration files: defaults, where the file is found, and one clear line naming
file, key and reason for every bad file (exit status 2, never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import loader
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ConfigError


def appliance_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=60)


BAD_FILES = {
    "unknown key": ('[dicom]\nae_titel = "X"\n', "dicom.ae_titel",
                    "unknown key (did you mean 'ae_title'?)"),
    "unknown section": ('[dicomm]\nport = 104\n', "dicomm", "unknown key"),
    "unknown key in a list item": ('[[peers]]\nname = "pacs"\nae_title = "PACS"\n'
                                   'host = "10.0.0.5"\nprot = 104\n', "peers[0].prot",
                                   "unknown key (did you mean 'port'?)"),
    "AE title of 17 characters": ('[dicom]\nae_title = "ABCDEFGHIJKLMNOPQ"\n', "dicom.ae_title",
                                  "AE title must be at most 16 characters, got 17"),
    "AE title with a backslash": ('[dicom]\nae_title = "AB\\\\CD"\n', "dicom.ae_title",
                                  "must not contain a backslash"),
    "port 70000": ("[dicom]\nport = 70000\n", "dicom.port",
                   "port must be between 1 and 65535, got 70000"),
    "wrong type": ('[dicom]\nport = "11112"\n', "dicom.port",
                   "expected an integer, got a string '11112'"),
    "wrong type in list": ('[dicom]\nallowed_calling_aets = "CT1"\n',
                           "dicom.allowed_calling_aets", "expected an array"),
    "bad backend": ('[hal]\nbackend = "gpio"\n', "hal.backend", "must be one of 'sim' or 'pi'"),
    "bad peer port": ('[[peers]]\nname = "pacs"\nae_title = "PACS"\nhost = "10.0.0.5"\n'
                      "port = 0\n", "peers[0].port", "port must be between 1 and 65535"),
    "peer missing key": ('[[peers]]\nname = "pacs"\nhost = "10.0.0.5"\n', "peers[0].ae_title",
                         "required key is missing"),
    "bad bind address": ('[dicom]\nbind = "localhost:104"\n', "dicom.bind",
                         "must be an IPv4 or IPv6 address"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
@pytest.mark.parametrize("command", [["config", "check"], ["run", "--config"]],
                         ids=["check", "run"])
def test_bad_file_gives_one_line_naming_file_key_reason_and_exit_2(tmp_path, case, command):
    text, key, reason = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = appliance_cli(*command, str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"appliance: {path}: {key}: ")
    assert reason in lines[0]
    assert "Traceback" not in result.stderr


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[dicom]\nport = \n")
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}: TOML syntax error" in result.stderr and "line 2" in result.stderr


def test_missing_explicit_file_is_refused(tmp_path):
    result = appliance_cli("run", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.toml: file not found" in result.stderr


def test_every_problem_in_a_file_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[dicom]\nport = 70000\nae_title = "A\\\\B"\n[web]\nport = -1\n')
    with pytest.raises(ConfigError) as err:
        loader.load_file(path)
    keys = sorted(line.split(": ")[1] for line in err.value.problems)
    assert keys == ["dicom.ae_title", "dicom.port", "web.port"]


def test_no_file_gives_development_defaults(tmp_path):
    result = appliance_cli("config", "show", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "from built-in defaults" in out
    for expected in ('data_dir = "var"', 'ae_title = "EDGEBOX"', "port = 11112", "port = 8080",
                     'backend = "sim"'):
        assert expected in out


def test_config_option_works_before_and_after_the_subcommand(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[dicom]\nae_title = "BEFORE"\n')
    before = appliance_cli("--config", str(path), "config", "show", cwd=tmp_path)
    after = appliance_cli("config", "show", "--config", str(path), cwd=tmp_path)
    middle = appliance_cli("config", "--config", str(path), "show", cwd=tmp_path)
    for result in (before, after, middle):
        assert result.returncode == 0, result.stderr
        assert 'ae_title = "BEFORE"' in result.stdout


def test_environment_variable_names_the_file(tmp_path):
    path = tmp_path / "env.toml"
    path.write_text('[dicom]\nae_title = "FROMENV"\n')
    result = appliance_cli("config", "show", cwd=tmp_path, env={"APPLIANCE_CONFIG": str(path)})
    assert 'ae_title = "FROMENV"' in result.stdout
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[dicom]\nae_title = "EXPLICIT"\n')
    result = appliance_cli("config", "show", "--config", str(explicit), cwd=tmp_path,
                           env={"APPLIANCE_CONFIG": str(path)})
    assert 'ae_title = "EXPLICIT"' in result.stdout


def test_development_config_file_in_var_is_found(tmp_path):
    dev = tmp_path / "var" / "config" / "appliance.toml"
    dev.parent.mkdir(parents=True)
    dev.write_text('[dicom]\nae_title = "DEVFILE"\n')
    if loader.BOX_CONFIG.exists():
        pytest.skip("this machine has a box configuration in /data, which takes precedence")
    result = appliance_cli("config", "show", cwd=tmp_path)
    assert 'ae_title = "DEVFILE"' in result.stdout


def test_ae_titles_are_stored_without_padding_spaces():
    config = ApplianceConfig.model_validate({"dicom": {"ae_title": "  PACS  "}})
    assert config.dicom.ae_title == "PACS"


def test_duplicate_peer_names_are_refused():
    peer = {"name": "pacs", "ae_title": "PACS", "host": "10.0.0.1", "port": 104}
    with pytest.raises(ConfigError, match="peers: peer name 'pacs' is used more than once"):
        loader.validate({"peers": [peer, peer]}, "x.toml")


def test_log_level_is_case_insensitive():
    assert loader.validate({"log": {"level": "debug"}}, "x").log.level == "DEBUG"
