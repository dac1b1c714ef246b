"""Every configuration key has a title (a short label in words) and help next to its
definition in the schema, units where the value has one, and a value with several problems is
refused with each of them."""

from __future__ import annotations

import pytest

from appliance.config import labels
from appliance.config.introspect import list_item, model_of
from appliance.config.loader import validate
from appliance.config.schema import check_ae_title
from appliance.core.errors import ConfigError, ValueProblems

EVERY_FIELD = labels.every_field()

#: Name endings that say the value has a unit; such a field must say which.
UNIT_SUFFIXES = ("_seconds", "_minutes", "_hours", "_days", "_mb", "_kb", "_percent",
                 "timeout", "interval", "retry_initial", "retry_max")


@pytest.mark.parametrize("key,info", EVERY_FIELD, ids=[key for key, _ in EVERY_FIELD])
def test_every_key_has_a_title_and_help(key, info):
    assert info.title, f"{key} has no title= in the schema"
    assert info.title[0].isupper() and "_" not in info.title, info.title
    if model_of(list_item(info.annotation) or info.annotation) is None:
        assert info.description, f"{key} has no description= in the schema"


@pytest.mark.parametrize("key,info", [(k, i) for k, i in EVERY_FIELD
                                      if k.endswith(UNIT_SUFFIXES)])
def test_a_key_named_for_a_unit_says_its_unit(key, info):
    assert labels.unit_of(info), f"{key} has no unit (json_schema_extra=SECONDS, ...)"


def test_the_number_of_keys_is_what_the_schema_holds():
    assert len(EVERY_FIELD) > 150  # a walk that stops early would pass the tests above


def test_labels_by_key():
    assert labels.label("dicom.max_pdu").with_unit() == "Largest PDU (bytes)"
    assert labels.label("peers[3].ae_title").title == "AE title"
    assert labels.label("worklist.hl7.max_message_kb").unit == "KiB"
    assert labels.title("storage_commitment") == "Storage Commitment"
    with pytest.raises(KeyError):
        labels.label("dicom.no_such_key")


def test_the_front_panel_titles_fit_its_display():
    for key in ("dicom.ae_title", "dicom.port", "network", "network.address",
                "network.netmask", "network.gateway"):
        assert len(labels.title(key)) <= 16 - len(" saved"), key


def test_an_ae_title_too_long_with_a_backslash_names_both_problems():
    with pytest.raises(ValueProblems) as refused:
        check_ae_title("ABCDEFGHIJKLMNOP\\Q")
    assert refused.value.problems == ["AE title must not contain a backslash",
                                      "AE title must be at most 16 characters, got 18"]
    with pytest.raises(ConfigError) as refused:
        validate({"dicom": {"ae_title": "A\x01" + "B" * 20}}, "f.toml")
    assert refused.value.problems == [
        "f.toml: dicom.ae_title: AE title must not contain control characters",
        "f.toml: dicom.ae_title: AE title must be at most 16 characters, got 22"]


def test_one_problem_is_a_plain_value_error():
    with pytest.raises(ValueError) as refused:
        check_ae_title("A" * 17)
    assert not isinstance(refused.value, ValueProblems)


def test_a_bad_name_says_everything_wrong_with_it():
    with pytest.raises(ConfigError) as refused:
        validate({"peers": [{"name": "-pacs one", "ae_title": "P", "host": "h"}]}, "f")
    assert refused.value.problems == [
        "f: peers[0].name: must start with a letter or digit, got '-'",
        "f: peers[0].name: may hold only letters, digits, '.', '_' and '-', not ' '"]
