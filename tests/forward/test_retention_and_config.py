"""Retention of local copies (never an unforwarded one), backoff arithmetic, and the
configuration keys of [storage], [[destinations]] and [[routes]], refusals included."""

from __future__ import annotations

import time

import pytest

from appliance.config.loader import load_file
from appliance.config.schema import ApplianceConfig
from appliance.core.backoff import backoff_delay
from appliance.core.errors import ConfigError
from appliance.forward.retention import apply_retention
from appliance.store.instances import InstanceMeta, InstanceStore
from appliance.store.queue import ForwardQueue
from tests.conftest import write_config


def stored(store: InstanceStore, uid: str, destinations: list[str], age_days: float = 0):
    temp = store.incoming / f"{uid}.tmp"
    temp.write_bytes(b"x" * 1000)
    meta = InstanceMeta(uid, "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.3.4", "P", "N", "CT",
                        "CT1", "1.2.840.10008.1.2.1")
    outcome = store.commit(temp, meta, destinations, "keep_first")
    store.db.connection().execute("UPDATE instances SET received_at = ? WHERE id = ?",
                                  (time.time() - age_days * 86400, outcome.instance_id))
    return outcome


@pytest.fixture
def store(tmp_path):
    s = InstanceStore(tmp_path / "data")
    yield s
    s.close()


def settings(**values):
    return ApplianceConfig.model_validate({"storage": values}).storage


def test_only_forwarded_copies_older_than_retention_are_deleted(store):
    queue = ForwardQueue(store.db)
    old_done = stored(store, "1.1", ["a", "b"], age_days=10)
    old_half = stored(store, "1.2", ["a", "b"], age_days=10)
    new_done = stored(store, "1.3", ["a"], age_days=1)
    old_failed = stored(store, "1.4", ["a"], age_days=10)
    for outcome, dest in ((old_done, "a"), (old_done, "b"), (old_half, "a"), (new_done, "a")):
        queue.mark_done(dest, outcome.instance_id, "1.2.840.10008.1.2.1")
    queue.mark_failed("a", old_failed.instance_id, "refused")

    assert apply_retention(store, queue, settings(retention_days=7, high_water_percent=100)) == 1
    assert not old_done.path.exists()
    assert old_half.path.exists() and new_done.path.exists() and old_failed.path.exists()
    uids = [r[0] for r in store.db.connection().execute("SELECT sop_instance_uid FROM instances")]
    assert sorted(uids) == ["1.2", "1.3", "1.4"]


def test_high_water_mark_deletes_forwarded_copies_early_but_never_unforwarded(store):
    queue = ForwardQueue(store.db)
    done = stored(store, "2.1", ["a"], age_days=1)
    pending = stored(store, "2.2", ["a"], age_days=2)
    queue.mark_done("a", done.instance_id, "1.2.840.10008.1.2.1")
    # Any real disk is fuller than 1 %: the high-water pass runs and deletes what it may.
    apply_retention(store, queue, settings(retention_days=30, high_water_percent=1))
    assert not done.path.exists()
    assert pending.path.exists()


def test_backoff_doubles_up_to_the_maximum():
    assert [backoff_delay(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_storage_and_destination_keys_have_defaults_and_are_documented():
    config = ApplianceConfig.model_validate({
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1"}],
        "destinations": [{"peer": "pacs"}]})
    assert config.storage.reserve_mb == 500 and config.storage.duplicates == "keep_first"
    dest = config.destinations[0]
    assert (dest.batch_size, dest.retry_initial, dest.retry_max, dest.max_age_hours) == \
        (50, 5.0, 300.0, 168.0)
    from tests.conftest import REPO
    readme = (REPO / "README.md").read_text()
    for key in ("storage.reserve_mb", "storage.duplicates", "storage.retention_days",
                "storage.high_water_percent", "destinations[].peer", "destinations[].batch_size",
                "destinations[].retry_initial", "destinations[].retry_max",
                "destinations[].max_age_hours", "destinations[].timeout",
                "destinations[].associations",
                "routes[].destinations", "routes[].calling_aets", "routes[].modalities",
                "routes[].sop_classes", "appliance queue"):
        assert f"`{key}" in readme, key


PEER = ('[[peers]]\nname = "pacs"\nae_title = "P"\nhost = "127.0.0.1"\n'
        '[[destinations]]\npeer = "pacs"\n')


@pytest.mark.parametrize("text, message", [
    ('[[destinations]]\npeer = "nosuch"\n',
     "destinations: destinations[0]: peer 'nosuch' is not one of the [[peers]]"),
    ('[storage]\nduplicates = "overwrite"\n', "storage.duplicates:"),
    ('[storage]\nreserve_mb = -1\n', "storage.reserve_mb: reserve must not be negative"),
    ('[storage]\nhigh_water_percent = 120\n', "storage.high_water_percent: must be a percentage"),
    ('[storage]\nreserv_mb = 1\n', "storage.reserv_mb: unknown key"),
    (PEER + 'batch_size = 0\n', "destinations[0].batch_size: must be between 1 and 1000"),
    (PEER + 'associations = 0\n', "destinations[0].associations: must be between 1 and 8"),
    (PEER + 'associations = 9\n', "destinations[0].associations: must be between 1 and 8"),
    (PEER + 'associations = "two"\n', "destinations[0].associations:"),
    (PEER + 'retry_initial = 10.0\nretry_max = 5.0\n',
     "destinations[0].retry_max: retry_max (5) must not be less than retry_initial (10)"),
    (PEER + '[[destinations]]\npeer = "pacs"\n', "peer 'pacs' is a destination more than once"),
    (PEER + '[[routes]]\ndestinations = ["other"]\n',
     "routes: routes[0]: 'other' is not one of the [[destinations]]"),
    (PEER + '[[routes]]\ndestinations = ["pacs"]\nmodalities = ["ct!"]\n',
     "routes[0].modalities[0]: must be a modality code"),
    (PEER + '[[routes]]\ndestinations = ["pacs"]\nsop_classes = ["1.2.x"]\n',
     "routes[0].sop_classes[0]: must be a DICOM UID"),
    (PEER + '[[routes]]\ndestinations = []\n', "routes[0].destinations:"),
])
def test_bad_values_are_refused_with_file_key_and_reason(tmp_path, text, message):
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_file(path)
    assert any(message in line and str(path) in line for line in refused.value.problems), \
        refused.value.problems


def test_a_valid_file_loads(tmp_path):
    path = write_config(tmp_path / "ok.toml", {
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1"}],
        "storage": {"reserve_mb": 100, "duplicates": "replace", "retention_days": 0.5},
        "destinations": [{"peer": "pacs", "batch_size": 10}],
        "routes": [{"destinations": ["pacs"], "modalities": ["CT"], "calling_aets": ["CT1"]}]})
    config = load_file(path)
    assert config.routes[0].calling_aets == ["CT1"]
