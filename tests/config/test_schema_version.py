"""`schema_version` in appliance.toml: older files are migrated in memory, the editor upgrades
the file and keeps the old one as `appliance.toml.v<old>`, and a file written by newer firmware
is refused unless that older copy is beside it (a rollback to older firmware keeps working).

The firmware ships no migration yet (version 1 is the only one), so the mechanism is exercised
with test migrations registered for the length of a test."""

from __future__ import annotations

import logging

import pytest

from appliance.config import editor, loader, migrations
from appliance.core.errors import ConfigError
from tests.config.test_config_files import appliance_cli

CALLS: list[int] = []


def title_to_ae_title(doc):
    """[dicom] title is now called ae_title."""
    CALLS.append(1)
    dicom = doc.get("dicom", {})
    if "title" in dicom:
        dicom["ae_title"] = dicom.pop("title")
    return doc


def name_from_ae_title(doc):
    """[device] name, when not set, is the AE title in lower case."""
    CALLS.append(2)
    title = doc.get("dicom", {}).get("ae_title")
    if title and "name" not in doc.get("device", {}):
        doc.setdefault("device", {})["name"] = title.lower()
    return doc


@pytest.fixture
def firmware(monkeypatch):
    """Pretend to be firmware reading schema version N, with the test migrations up to N."""
    CALLS.clear()

    def be(current: int) -> None:
        chain = {1: title_to_ae_title, 2: name_from_ae_title}
        monkeypatch.setattr(migrations, "CURRENT", current)
        monkeypatch.setattr(migrations, "MIGRATIONS",
                            {v: f for v, f in chain.items() if v < current})
        CALLS.clear()
    return be


V1_FILE = """\
# Room 3, installed by the service team
[device]
name = "room3"  # shown on the status page

[dicom]
# as the modality knows us
title = "ROOM3"
port = 11112
"""

V2_FILE = """\
# Room 3, installed by the service team
schema_version = 2

[dicom]
ae_title = "ROOM3"  # as the modality knows us
port = 11112
"""


def test_a_file_without_the_key_is_version_1_and_loads(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('[dicom]\nae_title = "OLDBOX"\n')
    file = loader.inspect_file(path)
    assert (file.version, file.steps, file.notes()) == (1, (), [])
    assert file.config.dicom.ae_title == "OLDBOX"
    shown = appliance_cli("config", "show", "--config", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"schema_version = {migrations.CURRENT}\n" in shown.stdout


def test_the_shipped_registry_has_a_described_migration_for_every_step():
    for version in range(migrations.FIRST, migrations.CURRENT):
        assert version in migrations.MIGRATIONS, version
        assert (migrations.MIGRATIONS[version].__doc__ or "").strip(), version
    assert all(v < migrations.CURRENT for v in migrations.MIGRATIONS)


def test_migrations_run_in_order_in_memory_and_never_rewrite_the_file(tmp_path, firmware,
                                                                       caplog):
    firmware(3)
    path = tmp_path / "appliance.toml"
    text = '# no version: written before there were any\n[dicom]\ntitle = "ROOM3"\n'
    path.write_text(text)
    before = path.stat()
    with caplog.at_level(logging.INFO, logger="appliance.config.migrations"):
        file = loader.inspect_file(path)
    assert CALLS == [1, 2]
    # The name comes from the AE title that the first migration moved: they ran in order.
    assert (file.config.dicom.ae_title, file.config.device.name) == ("ROOM3", "room3")
    assert file.steps == (
        "schema_version 1 -> 2: [dicom] title is now called ae_title.",
        "schema_version 2 -> 3: [device] name, when not set, is the AE title in lower case.")
    assert "schema_version 1 -> 2" in caplog.text and "schema_version 2 -> 3" in caplog.text
    assert path.read_text() == text and path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.toml"]


def test_only_the_migrations_a_file_needs_are_run(tmp_path, firmware):
    firmware(3)
    path = tmp_path / "appliance.toml"
    path.write_text(V2_FILE)
    config = loader.load_file(path)
    assert CALLS == [2]
    assert (config.dicom.ae_title, config.device.name) == ("ROOM3", "room3")
    path.write_text('schema_version = 3\n[dicom]\nae_title = "THREE"\n')
    assert loader.load_file(path).device.name == "edge-appliance"
    assert CALLS == [2]


def test_errors_after_a_migration_still_name_the_file_and_the_key(tmp_path, firmware):
    firmware(2)
    path = tmp_path / "appliance.toml"
    path.write_text('[dicom]\ntitle = "ABCDEFGHIJKLMNOPQ"\nprot = 104\n')
    with pytest.raises(ConfigError) as err:
        loader.load_file(path)
    assert sorted(err.value.problems) == [
        f"{path}: dicom.ae_title: AE title must be at most 16 characters, got 17",
        f"{path}: dicom.prot: unknown key (did you mean 'port'?)",
    ]


def test_a_file_a_migration_cannot_read_is_refused_in_one_line(tmp_path, firmware):
    firmware(3)
    path = tmp_path / "appliance.toml"
    path.write_text('schema_version = 2\ndicom = "ROOM3"\n')
    with pytest.raises(ConfigError) as err:
        loader.load_file(path)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(
        f"{path}: schema_version: cannot migrate it (schema_version 2 -> 3: [device] name")


@pytest.mark.parametrize("value", ['"2"', "0", "-1", "1.5", "true", "[1]"])
def test_a_version_that_is_not_a_whole_number_from_1_is_refused(tmp_path, value):
    path = tmp_path / "bad.toml"
    path.write_text(f"schema_version = {value}\n")
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"appliance: {path}: schema_version: must be a whole number")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_config_check_says_which_migrations_the_file_will_go_through(tmp_path, firmware,
                                                                     capsys):
    from appliance.cli import main

    firmware(2)
    path = tmp_path / "appliance.toml"
    path.write_text(V1_FILE)
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: schema_version 1 -> 2: [dicom] title is now called")
    assert out[-1] == f"{path}: OK"
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "# schema_version 1 -> 2: " in shown and "\nschema_version = 2\n" in shown


def test_a_file_from_newer_firmware_is_refused_with_both_versions(tmp_path):
    path = tmp_path / "appliance.toml"
    newer = migrations.CURRENT + 1
    path.write_text(f'schema_version = {newer}\n[dicom]\nae_title = "NEW"\n')
    for command in (["config", "check", str(path)], ["run", "--config", str(path)]):
        result = appliance_cli(*command, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith(
            f"appliance: {path}: schema_version: written by newer firmware: schema_version "
            f"{newer}, this firmware reads up to {migrations.CURRENT}; no appliance.toml.v"
            f"{migrations.CURRENT} copy")
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_from_newer_firmware_with_our_copy_beside_it_uses_the_copy(tmp_path, caplog):
    path = tmp_path / "appliance.toml"
    newer = migrations.CURRENT + 1
    path.write_text(f'schema_version = {newer}\n[dicom]\nae_title = "NEW"\nnew_key = 1\n')
    copy = tmp_path / f"appliance.toml.v{migrations.CURRENT}"
    copy.write_text('[dicom]\nae_title = "BEFORE"\n')
    with caplog.at_level(logging.WARNING, logger="appliance.config.loader"):
        file = loader.inspect_file(path)
    assert file.config.dicom.ae_title == "BEFORE"
    assert (file.read_from, file.newer_version) == (copy, newer)
    assert "USING THE OLDER COPY" in caplog.text and str(copy) in caplog.text
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"written by newer firmware (schema_version {newer}" in result.stdout
    assert f"using {copy}" in result.stdout


def test_a_bad_copy_is_refused_naming_the_copy(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(f"schema_version = {migrations.CURRENT + 1}\n")
    copy = tmp_path / f"appliance.toml.v{migrations.CURRENT}"
    copy.write_text("[dicom]\nport = 0\n")
    with pytest.raises(ConfigError) as err:
        loader.load_file(path)
    assert err.value.problems[0].startswith(f"{copy}: dicom.port: port must be between")


def test_editor_upgrades_the_file_and_keeps_the_old_one_for_older_firmware(tmp_path, firmware,
                                                                            caplog):
    firmware(3)
    path = tmp_path / "appliance.toml"
    path.write_text(V2_FILE)
    config = editor.set_value(path, "dicom.port", "104")
    assert (config.dicom.ae_title, config.dicom.port, config.device.name) == \
        ("ROOM3", 104, "room3")
    assert path.read_text() == V2_FILE.replace("schema_version = 2", "schema_version = 3") \
        .replace("port = 11112", "port = 104") + '\n[device]\nname = "room3"\n'
    backup = tmp_path / "appliance.toml.v2"
    assert backup.read_text() == V2_FILE
    # The file is now at our version: later writes leave the copy alone.
    backup.write_text(V2_FILE + "# marker\n")
    editor.set_value(path, "dicom.port", "105")
    assert backup.read_text().endswith("# marker\n")
    # Rolled back to firmware that reads up to version 2: it runs on the kept copy.
    firmware(2)
    with caplog.at_level(logging.WARNING, logger="appliance.config.loader"):
        old = loader.load_file(path)
    assert (old.dicom.ae_title, old.dicom.port, old.device.name) == \
        ("ROOM3", 11112, "edge-appliance")
    assert "USING THE OLDER COPY" in caplog.text and "schema_version 3" in caplog.text


def test_older_firmware_reads_the_copy_through_its_own_migrations(tmp_path, firmware):
    firmware(3)
    path = tmp_path / "appliance.toml"
    path.write_text('[dicom]\ntitle = "ROOM3"\n')
    (tmp_path / "appliance.toml.v2").write_text('schema_version = 2\n[dicom]\n'
                                                'ae_title = "STALE"\n')
    editor.set_value(path, "dicom.port", "104")
    # The version-2 copy predates the version-1 settings that were just migrated: it goes.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.toml", "appliance.toml.v1"]
    firmware(2)
    config = loader.load_file(path)
    assert (config.dicom.ae_title, config.dicom.port) == ("ROOM3", 11112)
    assert CALLS == [1]


def test_old_firmware_changing_a_setting_writes_the_copy_and_keeps_the_newer_file(tmp_path,
                                                                                   firmware):
    firmware(3)
    path = tmp_path / "appliance.toml"
    path.write_text(V2_FILE)
    editor.set_value(path, "dicom.ae_title", "NEWNAME")
    newer = path.read_bytes()
    firmware(2)
    config = editor.set_value(path, "dicom.port", "104")
    assert (config.dicom.ae_title, config.dicom.port) == ("ROOM3", 104)
    assert path.read_text() == V2_FILE.replace("port = 11112", "port = 104")
    assert (tmp_path / "appliance.toml.before-downgrade").read_bytes() == newer
    assert loader.inspect_file(path).notes() == []
    # Updated again: the newer firmware migrates what the old one wrote, and keeps a copy.
    firmware(3)
    config = editor.set_value(path, "dicom.max_associations", "4")
    assert (config.dicom.ae_title, config.dicom.port, config.dicom.max_associations) == \
        ("ROOM3", 104, 4)
    assert (tmp_path / "appliance.toml.v2").read_text() == \
        V2_FILE.replace("port = 11112", "port = 104")


def test_editor_refuses_a_newer_file_without_a_copy_and_changes_nothing(tmp_path):
    path = tmp_path / "appliance.toml"
    text = f"schema_version = {migrations.CURRENT + 1}\n[dicom]\nport = 104\n"
    path.write_text(text)
    result = appliance_cli("config", "set", "dicom.port", "105", "--config", str(path),
                           cwd=tmp_path)
    assert result.returncode == 2
    assert "written by newer firmware" in result.stderr
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.toml"]


def test_the_version_is_not_set_by_hand(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[dicom]\nport = 104\n")
    for changes in ({"schema_version": 7}, {"dicom.port": 105, "schema_version": 7}):
        with pytest.raises(ConfigError) as err:
            editor.set_values(path, changes)
        assert err.value.problems == [f"{path}: schema_version: set by the firmware when it "
                                      "writes the file, not by hand"]
    assert path.read_text() == "[dicom]\nport = 104\n"


def test_while_1_is_the_only_version_files_are_written_without_the_key(tmp_path):
    """Firmware from before schema versions refuses unknown keys: a rollback to it must
    still read what this firmware wrote."""
    if migrations.CURRENT != migrations.FIRST:
        pytest.skip("the firmware ships migrations: files carry the key")
    path = tmp_path / "appliance.toml"
    editor.set_value(path, "dicom.port", "104")
    assert "schema_version" not in path.read_text()


def test_a_new_file_says_its_version_once_there_are_several(tmp_path, firmware):
    firmware(2)
    path = tmp_path / "appliance.toml"
    editor.set_value(path, "dicom.port", "104")
    assert path.read_text().startswith("schema_version = 2\n")
    assert CALLS == []
    assert loader.load_file(path).dicom.port == 104 and CALLS == []
    assert not (tmp_path / "appliance.toml.v1").exists()


def test_the_kept_copy_is_byte_for_byte_even_with_crlf_line_ends(tmp_path, firmware):
    firmware(2)
    path = tmp_path / "appliance.toml"
    original = b'[dicom]\r\ntitle = "ROOM3"\r\n'
    path.write_bytes(original)
    editor.set_value(path, "dicom.port", "104")
    assert (tmp_path / "appliance.toml.v1").read_bytes() == original


def test_web_configuration_forms_do_not_offer_the_version():
    from appliance.web import config_forms

    assert "schema_version" not in config_forms.sections()
