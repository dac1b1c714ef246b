"""The forwarder's `queue` event is computed once per stored instance (and per destination):
`ForwardQueue.backlog` gives what `counts` gives for the pending rows and the destination's
hold/back-off state, and its cost does not grow with the delivered rows a store keeps."""

from __future__ import annotations

import time

from appliance.config.loader import validate
from appliance.core.events import EventBus
from appliance.forward.component import Forwarder
from appliance.store.instances import open_database
from appliance.store.queue import ForwardQueue
from tests.conftest import free_port


def fill(db, destination: str, states: list[str], start: int = 0) -> None:
    with db.transaction() as tx:
        for number, state in enumerate(states, start):
            instance_id = tx.execute(
                "INSERT INTO instances (sop_instance_uid, sop_class_uid, calling_aet, "
                "transfer_syntax, size, path, received_at) VALUES (?,?,?,?,?,?,?)",
                (f"1.2.3.{number}", "1.2.840.10008.5.1.4.1.1.2", "CT", "1.2.840.10008.1.2.1", 1,
                 f"x/{number}.dcm", time.time())).lastrowid
            tx.execute("INSERT INTO forward_queue (instance_id, destination, enqueued_at, "
                       "state) VALUES (?, ?, ?, ?)", (instance_id, destination, 1000.0 + number,
                                                      state))


def test_backlog_is_what_counts_says_about_pending_rows(tmp_path):
    db = open_database(tmp_path)
    queue = ForwardQueue(db)
    empty = queue.backlog("pacs")
    assert (empty.pending, empty.oldest_pending_at, empty.held, empty.next_attempt) == (
        0, None, False, 0.0)
    fill(db, "pacs", ["done", "pending", "failed", "pending", "done"])
    fill(db, "archive", ["pending"], start=10)
    queue.hold("pacs")
    queue.destination_failed("pacs", "refused", 30.0, 60.0)
    for name in ("pacs", "archive"):
        counts = queue.counts([name])[0]
        backlog = queue.backlog(name)
        assert (backlog.pending, backlog.oldest_pending_at, backlog.held,
                backlog.next_attempt) == (counts.pending, counts.oldest_pending_at,
                                          counts.held, counts.next_attempt)
    assert queue.backlog("pacs").pending == 2 and queue.backlog("pacs").held
    assert queue.backlog("pacs").oldest_pending_at == 1001.0
    assert not queue.backlog("archive").held and queue.backlog("archive").next_attempt == 0.0


def steps(db, call) -> int:
    """SQLite virtual machine steps (in hundreds) `call` takes on this thread's connection."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0
    conn = db.connection()
    conn.set_progress_handler(tick, 100)
    try:
        call()
    finally:
        conn.set_progress_handler(None, 100)
    return counted[0]


def test_backlog_reads_pending_rows_only(tmp_path):
    db = open_database(tmp_path)
    queue = ForwardQueue(db)
    fill(db, "pacs", ["pending"] * 20)
    few = steps(db, lambda: queue.backlog("pacs"))
    fill(db, "pacs", ["done"] * 3000, start=100)
    fill(db, "archive", ["done"] * 1000, start=5000)
    many = steps(db, lambda: queue.backlog("pacs"))
    assert many <= few + 2, (few, many)
    # what it replaced in the per-instance path reads them all
    assert steps(db, lambda: queue.counts(["pacs"])) > 10 * (few + 2)


def test_a_stored_instance_costs_the_forwarder_no_read_of_delivered_rows(tmp_path):
    config = validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                   "port": free_port()}],  # nothing listens there; nothing pending either
        "destinations": [{"peer": "pacs", "retry_initial": 5.0, "retry_max": 10.0}]}, "test")
    bus = EventBus()
    events = []
    bus.subscribe(events.append, topic="queue")
    forwarder = Forwarder(config, bus)
    forwarder.start()
    try:
        def stored() -> None:
            bus.publish("storage", kind="stored", instance_id=1)
        fill(forwarder.db, "pacs", ["done"] * 10)
        few = steps(forwarder.db, stored)
        fill(forwarder.db, "pacs", ["done"] * 3000, start=100)
        many = steps(forwarder.db, stored)
        assert many <= few + 2, (few, many)
        assert events and events[-1].data == {"destination": "pacs", "pending": 0,
                                              "backlog": False}
    finally:
        forwarder.stop(5)
