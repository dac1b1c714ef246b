"""`appliance config set`: validated, atomic, and kind to the rest of the file."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.config import editor, loader
from appliance.config.schema import check_ae_title
from appliance.core.errors import ConfigError
from tests.config.test_config_files import appliance_cli

ORIGINAL = """\
# Site: radiology, room 3
[device]
name = "room3"  # shown on the status page

[dicom]
# Our title, as the modality knows us
ae_title = "EDGEBOX"
port = 11112

[[peers]]
name = "pacs"
ae_title = "PACS"
host = "10.0.0.5"
port = 104
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(ORIGINAL)
    return path


def test_set_changes_only_that_value_and_keeps_comments_and_order(config_file, tmp_path):
    result = appliance_cli("config", "set", "dicom.ae_title", "ROOM3BOX",
                           "--config", str(config_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert config_file.read_text() == ORIGINAL.replace('ae_title = "EDGEBOX"',
                                                       'ae_title = "ROOM3BOX"')
    assert loader.load_file(config_file).dicom.ae_title == "ROOM3BOX"
    assert [p.name for p in tmp_path.iterdir()] == ["appliance.toml"]  # no temp file left


def test_set_refuses_a_bad_value_and_leaves_the_file_alone(config_file, tmp_path):
    for key, value, reason in [
        ("dicom.ae_title", "ABCDEFGHIJKLMNOPQ", "at most 16 characters"),
        ("dicom.port", "70000", "between 1 and 65535"),
        ("dicom.port", "eleven", "expected an integer, got 'eleven'"),
        ("dicom.strict_called_aet", "maybe", "expected true or false"),
        ("dicom.ae_tilte", "X", "unknown key 'ae_tilte' in dicom"),
        ("peers[3].port", "104", "there are only 1 entries"),
    ]:
        result = appliance_cli("config", "set", key, value, "--config", str(config_file),
                               cwd=tmp_path)
        assert result.returncode == 2, (key, result.stdout)
        assert result.stderr.startswith(f"appliance: {config_file}: {key}: "), result.stderr
        assert reason in result.stderr
        assert config_file.read_text() == ORIGINAL


def test_set_typed_values(config_file):
    editor.set_value(config_file, "dicom.port", "104")
    editor.set_value(config_file, "dicom.strict_called_aet", "false")
    editor.set_value(config_file, "dicom.allowed_calling_aets", "CT1, MR1")
    editor.set_value(config_file, "dicom.acse_timeout", "12.5")
    config = editor.set_value(config_file, "peers[0].host", "pacs.example.org")
    assert config.dicom.port == 104
    assert config.dicom.strict_called_aet is False
    assert config.dicom.allowed_calling_aets == ["CT1", "MR1"]
    assert config.dicom.acse_timeout == 12.5
    assert config.peers[0].host == "pacs.example.org"
    assert loader.load_file(config_file) == config
    editor.set_value(config_file, "peers.0.port", "4242")
    assert loader.load_file(config_file).peers[0].port == 4242


def test_set_adds_a_missing_section_and_creates_a_missing_file(tmp_path):
    path = tmp_path / "new" / "appliance.toml"
    config = editor.set_value(path, "log.level", "DEBUG")
    assert config.log.level == "DEBUG"
    editor.set_value(path, "web.port", "8443")
    assert loader.load_file(path).web.port == 8443


def test_set_replaces_the_peer_list_from_toml(config_file):
    config = editor.set_value(
        config_file, "peers",
        '[{name = "pacs", ae_title = "PACS", host = "10.0.0.5", port = 104},'
        ' {name = "ris", ae_title = "RIS", host = "10.0.0.6", port = 105}]')
    assert [p.name for p in config.peers] == ["pacs", "ris"]
    assert [p.name for p in loader.load_file(config_file).peers] == ["pacs", "ris"]


def test_set_refuses_to_edit_an_already_broken_file(config_file):
    config_file.write_text(ORIGINAL + "\n[bogus]\n")
    with pytest.raises(ConfigError, match="bogus: unknown key"):
        editor.set_value(config_file, "dicom.port", "104")


def test_set_keeps_file_permissions(config_file):
    os.chmod(config_file, 0o600)
    editor.set_value(config_file, "dicom.port", "104")
    assert config_file.stat().st_mode & 0o777 == 0o600


def test_show_masks_secrets():
    from pydantic import BaseModel, SecretStr

    class WithSecret(BaseModel):
        password: SecretStr

    assert "hunter2" not in editor.render(WithSecret(password="hunter2"))
    assert "****" in editor.render(WithSecret(password="hunter2"))


AE_CHARS = string.ascii_uppercase + string.digits + " _-."


@given(st.text(alphabet=AE_CHARS, min_size=1, max_size=16).filter(lambda s: s.strip()))
def test_any_title_of_up_to_16_allowed_characters_is_accepted(title):
    assert check_ae_title(title) == title.strip()


@given(st.text(alphabet=AE_CHARS, max_size=15), st.text(alphabet=AE_CHARS, max_size=15))
def test_a_backslash_anywhere_is_refused(before, after):
    with pytest.raises(ValueError, match="backslash"):
        check_ae_title(before + "\\" + after)


@given(st.text(alphabet=string.ascii_uppercase, min_size=17, max_size=40))
def test_titles_over_16_characters_are_refused(title):
    with pytest.raises(ValueError, match="at most 16"):
        check_ae_title(title)
