"""The content hash Storage Commitment checks, taken by the native engine while it wrote the
file and recorded by the store in the instance row's own transaction: there right after the
C-STORE Success (no background hashing), equal to hashlib's SHA-256 and size of the stored
file; a replaced duplicate's is the new copy's, a kept first copy's stays; with commitment
disabled the engine hashes nothing (and starts for new associations once it is enabled)."""

from __future__ import annotations

import hashlib

import pytest
from pydicom.uid import generate_uid

from appliance.config.schema import ApplianceConfig
from tests.commitment.conftest import action_information, committed_uids, ct_image


def file_hash(app, image) -> tuple[int, str]:
    """(size, SHA-256) of the stored file of `image`, read now."""
    conn = app.storage.store.db.connection()
    relative = conn.execute("SELECT path FROM instances WHERE sop_instance_uid = ?",
                            (str(image.SOPInstanceUID),)).fetchone()[0]
    data = (app.storage.store.root / relative).read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def recorded_hash(app, image) -> tuple[int, str] | None:
    """(size, SHA-256) recorded for the current copy of `image` (None: none for it)."""
    row = app.storage.store.db.connection().execute(
        "SELECT h.size, h.sha256 FROM instances i JOIN instance_hashes h ON "
        "h.instance_id = i.id AND h.received_at = i.received_at "
        "WHERE i.sop_instance_uid = ?", (str(image.SOPInstanceUID),)).fetchone()
    return None if row is None else (row[0], row[1])


def told_hasher(app) -> list[int]:
    """The instance ids the commitment service's hashing thread is told of from now on."""
    told: list[int] = []
    app.commitment.hasher.stored = told.append
    return told


def test_the_hash_is_recorded_with_the_instance_before_the_success(appliance_factory,
                                                                   modality):
    app = appliance_factory()
    told = told_hasher(app)
    app.commitment.hasher.stop(2)  # only the store's own transaction can record it now
    images = [ct_image(n) for n in range(3)]
    assoc = modality.associate(app.port)
    for image in images:
        modality.store(assoc, [image])  # returns on the C-STORE Success
        assert recorded_hash(app, image) == file_hash(app, image)
    sizes = [row[0] for row in app.storage.store.db.connection().execute(
        "SELECT size FROM instances ORDER BY id")]
    assert sizes == [file_hash(app, image)[0] for image in images]
    assert told == []
    assert app.commitment.hasher.hashed == 0


def test_committed_without_the_hashing_thread_reading_anything(appliance_factory, modality):
    app = appliance_factory()
    told = told_hasher(app)
    images = [ct_image(n) for n in range(3)]
    assoc = modality.associate(app.port)
    modality.store(assoc, images)
    assert modality.request(assoc, action_information(images)).Status == 0x0000
    event_type, report, _ = modality.wait_report()
    assert event_type == 1
    assert committed_uids(report) == {str(i.SOPInstanceUID) for i in images}
    assert told == []
    assert app.commitment.hasher.hashed == 0


@pytest.mark.parametrize("duplicates, kept", [("replace", "second"), ("keep_first", "first")])
def test_a_duplicate_has_the_hash_of_the_copy_kept(appliance_factory, modality, duplicates,
                                                  kept):
    app = appliance_factory(storage={"duplicates": duplicates})
    first = ct_image(1)
    second = ct_image(2)  # another content under the same SOP Instance UID
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    second.PatientName = "DOE^JANE^SECOND"
    assoc = modality.associate(app.port)
    modality.store(assoc, [first])
    first_hash = file_hash(app, first)
    modality.store(assoc, [second])
    now = file_hash(app, first)
    assert (now == first_hash) == (kept == "first")
    assert recorded_hash(app, first) == now
    assert app.storage.store.db.connection().execute(
        "SELECT COUNT(*) FROM instance_hashes").fetchone()[0] == 1


def test_disabled_hashes_nothing_until_enabled(appliance_factory, modality):
    app = appliance_factory(storage_commitment={"enabled": False})
    given: list = []
    store_received = app.storage.store_received

    def spy(*args, **kwargs):
        given.append(kwargs.get("content_hash"))
        return store_received(*args, **kwargs)

    app.storage.store_received = spy
    before = ct_image(1)
    assoc = modality.associate(app.port)
    modality.store(assoc, [before])
    assoc.release()
    assert given == [None]
    assert app.server.engine.settings.hash_content is False
    assert recorded_hash(app, before) is None

    enabled = ApplianceConfig.model_validate(
        {**app.config.model_dump(), "storage_commitment": {"enabled": True}})
    app.commitment.reconfigure(enabled)
    app.server.reconfigure(enabled)
    after = ct_image(2)
    after.SOPInstanceUID = after.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    modality.store(modality.associate(app.port), [after])
    assert given[1] == file_hash(app, after)
    assert recorded_hash(app, after) == file_hash(app, after)
