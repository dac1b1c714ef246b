"""Fixtures for the updater: a real RAUC service with file-backed slots (see rauc_box), its
signing keys (made once per session), and a configuration whose data directory is per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.update.paths import UpdatePaths
from tests.update.rauc_box import Keys, RaucBox, usable


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Keys:
    if usable():
        pytest.skip(usable())
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def box(tmp_path, keys):
    made = RaucBox(tmp_path / "box", keys)
    yield made
    made.close()


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


@pytest.fixture
def paths(tmp_path) -> UpdatePaths:
    return UpdatePaths.in_data_dir(tmp_path / "data")
