"""The engine's connection threads (src/thread_pool.hpp): associations that come one after
another are served on one resident thread (no thread made per connection), connections that
overlap get extra threads that leave after a while without work, and stop() leaves no thread
behind. Counted as the process's native threads that carry the engine's names
(/proc/self/task/*/comm): threads other tests left to finish in the background do not count.
The peers are DCMTK's echoscu processes and raw sockets."""

from __future__ import annotations

import threading

from tests.conftest import connect_loopback, echoscu
from tests.dicom import port_probe
from tests.dicom.engine.engine_threads import engine_threads, thread_names

#: An extra thread leaves after 100 ms without a task (ThreadPool::kIdleExit); waited for with
#: a margin for a loaded machine.
SETTLE = 15.0


def test_engine_threads_carry_their_names(engine):
    assert engine_threads() == 0
    dicom_engine, _ = engine()
    names = thread_names()
    assert names.count("dicom-accept") == 1 and names.count("dicom-conn") == 1, names
    dicom_engine.stop(grace=0.5)
    assert engine_threads() == 0


def test_associations_one_after_another_reuse_one_thread(engine):
    native_ids = []  # the kernel's thread id of each event: a new thread gets a new one
    dicom_engine, _ = engine(
        on_association=lambda event: native_ids.append(threading.get_native_id()))
    started = engine_threads()  # the accept thread and the resident connection thread
    seen = set()
    for _ in range(8):
        assert echoscu(dicom_engine.port).returncode == 0
        seen.add(engine_threads())
    assert port_probe.wait_until(lambda: len(native_ids) == 8 * 3, 5), native_ids
    assert len(set(native_ids)) == 1, native_ids
    assert native_ids[0] != threading.get_native_id()
    assert seen == {started}, (started, seen)


def test_overlapping_connections_get_extra_threads_that_leave_when_idle(engine):
    dicom_engine, _ = engine(artim_timeout=30)
    started = engine_threads()
    held = [connect_loopback(dicom_engine.port, f"127.0.0.{n + 2}") for n in range(3)]
    try:
        # One on the resident thread, the others on extra ones (each waits for its
        # A-ASSOCIATE-RQ).
        assert port_probe.wait_until(lambda: engine_threads() >= started + 2, 5), \
            (started, engine_threads())
        assert dicom_engine.active_associations == 0
    finally:
        for sock in held:
            sock.close()
    assert port_probe.wait_until(lambda: engine_threads() == started, SETTLE), \
        (started, engine_threads())
    assert echoscu(dicom_engine.port).returncode == 0
    assert engine_threads() == started


def test_stop_leaves_no_thread_behind(engine):
    before = engine_threads()
    dicom_engine, _ = engine(artim_timeout=30)
    assert engine_threads() == before + 2  # the accept thread and the resident thread
    assert echoscu(dicom_engine.port).returncode == 0
    held = [connect_loopback(dicom_engine.port) for _ in range(2)]
    try:
        assert port_probe.wait_until(lambda: engine_threads() == before + 3, 5)
        dicom_engine.stop(grace=0.5)
        assert engine_threads() == before, (before, engine_threads())
    finally:
        for sock in held:
            sock.close()
    # Started again, it serves as before.
    dicom_engine.start()
    assert echoscu(dicom_engine.port).returncode == 0
    dicom_engine.stop(grace=0.5)
    assert engine_threads() == before
