"""Which coercion rules a waiting instance is sent with (appliance/forward/route_rules.py),
decided at send time from the current routes: the first matching route that names the
destination; and the fail-safe: an instance waiting for a de-identifying destination that no
route covers any more is refused, never sent as stored."""

from __future__ import annotations

import shutil

import pytest

from appliance.config.loader import validate
from appliance.dicom.storage import read_meta
from appliance.forward.coercion import CoercionError
from appliance.forward.route_rules import RouteRules
from appliance.store.instances import InstanceStore
from appliance.store.queue import ForwardQueue
from tests.conftest import free_port
from tests.storage.dicom_files import make_study


def config(tmp_path, *routes):
    return validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "peers": [{"name": n, "ae_title": n.upper(), "host": "127.0.0.1", "port": free_port()}
                  for n in ("pacs", "research")],
        "destinations": [{"peer": "pacs"}, {"peer": "research"}],
        "routes": list(routes)}, "test")


@pytest.fixture
def waiting(tmp_path):
    """One CT instance stored and waiting for both destinations: (store, its queue item)."""
    store = InstanceStore(tmp_path / "data")
    [path] = make_study(tmp_path / "study", 1)
    temp = tmp_path / "incoming.dcm"
    shutil.copy(path, temp)
    store.commit(temp, read_meta(temp, "CT1"), ["pacs", "research"], "keep_first")
    [item] = ForwardQueue(store.db).due("research", limit=10)
    yield store, item
    store.close()


def test_the_first_matching_route_naming_the_destination_gives_the_rules(tmp_path, waiting):
    store, item = waiting
    rules = RouteRules(config(
        tmp_path,
        {"destinations": ["pacs"]},
        {"destinations": ["research"], "modalities": ["MR"], "set": {"StationName": "MR"}},
        {"destinations": ["research"], "modalities": ["CT"], "deidentify": True},
        {"destinations": ["research"], "prefix": {"PatientID": "X-"}}), store.db)
    assert rules.prepare_for("pacs") is None  # no rule-carrying route: streamed as stored
    chosen = rules.rules("research", item)
    assert chosen.deidentify and not chosen.prefix and not chosen.set


def test_a_de_identifying_destination_no_route_covers_any_more_is_refused(tmp_path, waiting):
    store, item = waiting
    # the CT route was changed to MR after the instance was queued
    rules = RouteRules(config(tmp_path, {"destinations": ["pacs"]},
                              {"destinations": ["research"], "modalities": ["MR"],
                               "deidentify": True}), store.db)
    with pytest.raises(CoercionError, match="research takes de-identified copies"):
        rules.prepare_for("research")(item, store.root / item.path)
    # without de-identification the new routes' answer is "no rules": sent as stored
    plain = RouteRules(config(tmp_path, {"destinations": ["pacs"]},
                              {"destinations": ["research"], "modalities": ["MR"],
                               "prefix": {"PatientID": "X-"}}), store.db)
    assert plain.prepare_for("research")(item, store.root / item.path) is None
