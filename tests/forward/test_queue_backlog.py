"""What the forwarder tells the LEDs, panel and console after every stored instance (on the
receiving thread, before the C-STORE response) comes from `ForwardQueue.backlog`: the same
pending figures as `counts`, read from the pending rows alone, never from the done rows
retention keeps (counting those took ~14 ms per stored instance with 100,000 of them)."""

from __future__ import annotations

from appliance.store.instances import open_database
from appliance.store.queue import ForwardQueue


def queued(db, states: list[str], destination: str = "pacs") -> list[int]:
    ids = []
    with db.transaction() as conn:
        for number, state in enumerate(states):
            instance = conn.execute(
                "INSERT INTO instances (sop_instance_uid, sop_class_uid, calling_aet, "
                "transfer_syntax, size, path, received_at) VALUES (?, '1.2.840.10008.5.1.4.1.1.2',"
                " 'CT', '1.2.840.10008.1.2.1', 10, ?, 1)",
                (f"1.2.{destination}.{number}", f"a/{destination}{number}.dcm")).lastrowid
            conn.execute("INSERT INTO forward_queue (instance_id, destination, enqueued_at, "
                         "state) VALUES (?, ?, ?, ?)", (instance, destination, 100 + number,
                                                        state))
            ids.append(instance)
    return ids


def test_backlog_gives_the_pending_figures_of_counts_from_the_pending_rows_only(tmp_path):
    db = open_database(tmp_path)
    queue = ForwardQueue(db)
    assert queue.backlog("pacs").pending == 0 and queue.backlog("pacs").oldest_pending_at is None
    queued(db, ["done"] * 50 + ["failed"] * 3 + ["pending"] * 7)
    queued(db, ["pending"] * 4, destination="other")
    queue.hold("pacs")
    queue.destination_failed("pacs", "refused", 5, 60)
    for destination in ("pacs", "other"):
        full, quick = queue.counts([destination])[0], queue.backlog(destination)
        assert (quick.pending, quick.oldest_pending_at, quick.held, quick.failures,
                quick.next_attempt) == (full.pending, full.oldest_pending_at, full.held,
                                        full.failures, full.next_attempt)
    assert queue.backlog("pacs").pending == 7 and queue.backlog("pacs").oldest_pending_at == 153

    plans = []
    conn = db.connection()
    conn.set_trace_callback(lambda sql: plans.append(sql) if "forward_queue" in sql else None)
    queue.backlog("pacs")
    conn.set_trace_callback(None)
    assert plans
    for sql in plans:  # every read of the queue goes by the index to the pending rows
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "state=?" in plan, plan
    db.close()
