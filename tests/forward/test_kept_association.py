"""The batch lane keeps its association across consecutive batches and records each batch's
delivered instances in one transaction (one durable commit per batch, not per instance), only
after their C-STORE Success. Run in the test's thread against a real pynetdicom Storage SCP on
127.0.0.1 (the PickyPacs of test_poison_instance)."""

from __future__ import annotations

from appliance.dicom.peer_config import PeerConfig
from appliance.forward.config import DestinationConfig
from appliance.forward.worker import DestinationWorker
from appliance.store.instances import INSTANCES_DIR, open_database
from tests.forward.test_forward_orthanc import uids
from tests.forward.test_poison_instance import (  # noqa: F401 - picky_pacs is a fixture
    picky_pacs,
    store_directly,
)
from tests.storage.dicom_files import make_study


class Statements:
    """The SQL statements run on one connection, grouped into the transactions they ran in."""

    def __init__(self):
        self.transactions: list[list[str]] = []
        self._current: list[str] | None = None

    def __call__(self, sql: str) -> None:
        if sql.startswith("BEGIN"):
            self._current = []
        elif sql == "COMMIT" and self._current is not None:
            self.transactions.append(self._current)
            self._current = None
        elif self._current is not None:
            self._current.append(sql)

    def commits_marking_done(self) -> int:
        return sum(any("SET state = 'done'" in sql for sql in tx) for tx in self.transactions)


def queued_worker(tmp_path, pacs, paths, **settings):
    """A worker for the picky PACS with `paths` stored and queued for it; (database, worker)."""
    for path in paths:
        store_directly(tmp_path / "data", path, "picky")
    db = open_database(tmp_path / "data")
    settings.setdefault("associations", 1)  # one batch lane, stepped by the test itself
    worker = DestinationWorker(db, DestinationConfig(peer="picky", batch_size=5, **settings),
                               PeerConfig(**pacs.peer()), "EDGEBOX",
                               tmp_path / "data" / INSTANCES_DIR)
    return db, worker


def test_consecutive_batches_share_one_association_and_one_commit_each(picky_pacs,  # noqa: F811
                                                                       tmp_path):
    refuse = make_study(tmp_path / "refused", 1)
    good = make_study(tmp_path / "study", 12)
    pacs = picky_pacs(refuse_uid=uids(refuse)[0])
    db, worker = queued_worker(tmp_path, pacs, good[:6] + refuse + good[6:],
                               retry_initial=600, retry_max=600)
    statements = Statements()
    db.connection().set_trace_callback(statements)
    try:
        for _ in range(3):  # 13 due: batches of 5, 5 and 3, one after the other
            assert worker.step() == 0.0
        worker.step()  # nothing due now: the association waits a moment for more
        assert pacs.association_count() == 1
    finally:
        worker.release_association()
        db.connection().set_trace_callback(None)

    assert pacs.received() == uids(good)
    [carried] = pacs.associations.values()
    assert sorted(carried) == uids(good + refuse)  # all three batches on that one
    assert statements.commits_marking_done() == 3  # one per batch, not one per instance
    rows = dict(db.connection().execute(
        "SELECT i.sop_instance_uid, q.state FROM forward_queue q JOIN instances i ON "
        "i.id = q.instance_id").fetchall())
    assert rows == {**{uid: "done" for uid in uids(good)}, uids(refuse)[0]: "pending"}
    db.close()


def test_the_kept_association_is_released_when_nothing_follows(picky_pacs,  # noqa: F811
                                                               tmp_path, monkeypatch):
    monkeypatch.setattr("appliance.forward.sender.REUSE_WITHIN", 0.0)
    good = make_study(tmp_path / "study", 4)
    pacs = picky_pacs()
    db, worker = queued_worker(tmp_path, pacs, good[:2])
    try:
        assert worker.step() == 0.0
        session = worker._session
        assert session is not None and session.is_open
        worker.step()  # nothing due, and it may not wait: released
        assert worker._session is None and not session.is_open
        for path in good[2:]:
            store_directly(tmp_path / "data", path, "picky")
        assert worker.step() == 0.0  # on a new association
    finally:
        worker.release_association()
    assert pacs.received() == uids(good) and pacs.association_count() == 2
    db.close()


def test_an_abort_on_the_first_instance_of_a_kept_association_is_not_held_against_it_yet(
        picky_pacs, tmp_path):  # noqa: F811
    """Nothing says that instance caused it (the peer may have ended the idle association): it
    goes again first on a new association, and only an abort there isolates it."""
    study = make_study(tmp_path / "study", 10)
    abort_uid = uids([study[5]])[0]
    pacs = picky_pacs(abort_uid=abort_uid)
    db, worker = queued_worker(tmp_path, pacs, study, retry_initial=600, retry_max=600)
    broken = []
    try:
        for _ in range(4):  # 5 sent; the kept one lost; isolated on a new one; the other 4
            assert worker.step() == 0.0
            broken.append(worker.broken_in_a_row)
    finally:
        worker.release_association()
    assert broken == [0, 0, 1, 0]  # the kept association's end is not counted against it
    tries = pacs.tries_of(abort_uid)
    assert len(tries) == 2 and tries[0][-1] == abort_uid and tries[1][0] == abort_uid
    assert pacs.received() == uids(study[:5] + study[6:])
    row = db.connection().execute(
        "SELECT q.isolated, q.attempts, q.last_error FROM forward_queue q JOIN instances i ON "
        "i.id = q.instance_id WHERE i.sop_instance_uid = ?", (abort_uid,)).fetchone()
    assert row[0] == 1 and row[1] == 1 and "aborted the association" in row[2]
    db.close()
