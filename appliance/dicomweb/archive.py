"""The web page's door to the local store for DICOMweb: the running storage component's
instance store (its database and files), handed to the web page as the `dicomweb` provider
(appliance/component_list.py). While storage is stopped the DICOMweb routes answer 503."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from appliance.dicomweb.errors import StoreUnavailable

log = logging.getLogger(__name__)


class LocalArchive:
    """What DICOMweb reads: `store_source()` gives the instance store, or None while the
    storage component is stopped."""

    def __init__(self, store_source: Callable):
        self.store_source = store_source

    def open(self) -> tuple[object, Path]:
        """(database, instances root) of the running store, or StoreUnavailable."""
        store = self.store_source()
        if store is None:
            raise StoreUnavailable("the instance store is not running (storage stopped)")
        return store.db, store.root
