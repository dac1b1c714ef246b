"""The supervisor's rules, in-process with stand-in components, a fake clock and a recorded
notifier: restarts with backoff, readiness, watchdog only while healthy, reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.supervisor import FAILED, RUNNING, Backoff, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingNotifier:
    def __init__(self, watchdog_usec: int | None = None) -> None:
        self.messages: list[str] = []
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None

    def ready(self, status):
        self.messages.append("READY=1")

    def status(self, status):
        self.messages.append(f"STATUS={status}")

    def watchdog(self):
        self.messages.append("WATCHDOG=1")

    def reloading(self):
        self.messages.append("RELOADING=1")

    def reloaded(self, status):
        self.messages.append("READY=1")

    def stopping(self):
        self.messages.append("STOPPING=1")


class Fake(Component):
    def __init__(self, name, essential=False, fail_starts=0):
        self.name, self.essential = name, essential
        self.fail_starts = fail_starts
        self.starts = self.stops = 0
        self.broken = False
        self.config = None

    def start(self):
        self.starts += 1
        if self.fail_starts:
            self.fail_starts -= 1
            raise ComponentFailure("cannot start")
        self.broken = False

    def stop(self, timeout):
        self.stops += 1

    def check(self):
        if self.broken:
            raise ComponentFailure("broke")

    def reconfigure(self, config):
        self.config = config

    def configure(self, config):
        self.config = config


def make(components, clock=None, notifier=None, **kwargs):
    clock = clock or Clock()
    sup = Supervisor(ApplianceConfig(), components, notifier=notifier or RecordingNotifier(),
                     clock=clock, backoff=Backoff(initial=1, factor=2, maximum=8,
                                                  stable_after=60), **kwargs)
    return sup, clock


def start_all(sup):
    for slot in sup.slots:
        sup._start(slot, sup.clock())


def test_failed_component_is_restarted_with_exponential_backoff_while_others_run():
    flaky, steady = Fake("flaky"), Fake("steady", essential=True)
    sup, clock = make([flaky, steady])
    start_all(sup)
    flaky.fail_starts = 3
    flaky.broken = True
    sup.step()
    slot = sup.slots[0]
    assert slot.state == FAILED and slot.last_error == "broke"
    restart_times = []
    for _ in range(200):
        clock.now += 0.25
        before = flaky.starts
        sup.step()
        if flaky.starts > before:
            restart_times.append(clock.now)
        assert sup.slots[1].state == RUNNING
        if slot.state == RUNNING:
            break
    assert slot.state == RUNNING
    gaps = [b - a for a, b in zip(restart_times, restart_times[1:], strict=False)]
    assert gaps == [2.0, 4.0, 8.0]  # delays after failures 2, 3 and 4 (the first was 1 s)
    assert steady.starts == 1


def test_failure_count_resets_after_a_stable_run():
    comp = Fake("c")
    sup, clock = make([comp])
    start_all(sup)
    comp.broken = True
    sup.step()
    clock.now += 1
    sup.step()
    assert sup.slots[0].state == RUNNING and sup.slots[0].failures == 1
    clock.now += 61
    sup.step()
    assert sup.slots[0].failures == 0


def test_ready_is_sent_once_essential_components_run():
    late = Fake("dicom", essential=True, fail_starts=1)
    notifier = RecordingNotifier()
    sup, clock = make([Fake("other"), late], notifier=notifier)
    start_all(sup)
    sup.step()
    assert "READY=1" not in notifier.messages
    clock.now += 1
    sup.step()
    assert notifier.messages.count("READY=1") == 1
    clock.now += 1
    sup.step()
    assert notifier.messages.count("READY=1") == 1


def test_watchdog_is_fed_only_while_healthy():
    essential = Fake("dicom", essential=True)
    notifier = RecordingNotifier(watchdog_usec=2_000_000)  # ping every 1 s
    sup, clock = make([essential], notifier=notifier, essential_down_limit=5)
    start_all(sup)
    for _ in range(4):
        sup.step()
        clock.now += 1
    assert notifier.messages.count("WATCHDOG=1") == 4
    essential.broken = True
    essential.fail_starts = 100
    pings_at_failure = notifier.messages.count("WATCHDOG=1")
    for _ in range(20):
        sup.step()
        clock.now += 1
    pings = notifier.messages.count("WATCHDOG=1")
    # Pinged while within the 5 s allowance, then never again.
    assert pings_at_failure < pings <= pings_at_failure + 6
    assert not sup.healthy()
    essential.fail_starts = 0
    for _ in range(20):
        sup.step()
        clock.now += 1
    assert sup.healthy()
    assert notifier.messages.count("WATCHDOG=1") > pings


def test_status_line_names_a_failed_component_and_its_error():
    comp = Fake("datadir")
    sup, clock = make([comp, Fake("dicom", essential=True)])
    start_all(sup)
    comp.broken = True
    sup.step()
    assert "degraded" in sup.status_line()
    assert "datadir: failed (broke)" in sup.status_line()


class Counting(Fake):
    """A component whose status line costs something (a database count, say)."""

    def __init__(self, name):
        super().__init__(name, essential=True)
        self.asked = 0
        self.detail = "0 stored"

    def status(self):
        self.asked += 1
        return self.detail


def test_details_are_read_every_status_interval_and_state_changes_at_once():
    counting, other = Counting("storage"), Fake("other")
    notifier = RecordingNotifier()
    sup, clock = make([counting, other], notifier=notifier)
    start_all(sup)
    sup.step()
    assert notifier.messages == ["READY=1"]
    asked = counting.asked
    for _ in range(20):                              # 4 s of 0.2 s ticks: nothing changed
        clock.now += 0.2
        sup.step()
    assert counting.asked == asked                   # no status line built
    counting.detail = "1 stored"
    clock.now += 1.0                                 # STATUS_INTERVAL (5 s) has passed
    sup.step()
    assert notifier.messages[-1] == "STATUS=storage: 1 stored; other: running"
    other.broken = True
    clock.now += 0.2
    sup.step()                                       # a state change goes out at once
    assert notifier.messages[-1].startswith("STATUS=degraded; storage: 1 stored")


def test_reload_applies_a_good_file_and_keeps_the_old_config_on_a_bad_one(tmp_path: Path):
    path = tmp_path / "a.toml"
    path.write_text('[dicom]\nae_title = "NEWTITLE"\n')
    comp = Fake("c")
    sup, clock = make([comp], config_path=path)
    start_all(sup)
    assert sup.reload()
    assert comp.config.dicom.ae_title == "NEWTITLE"
    path.write_text('[dicom]\nae_title = "WAY_TOO_LONG_AE_TITLE"\n')
    assert not sup.reload()
    assert sup.config.dicom.ae_title == "NEWTITLE"
    assert comp.config.dicom.ae_title == "NEWTITLE"


def test_a_component_that_raises_during_reconfigure_is_restarted(tmp_path: Path):
    path = tmp_path / "a.toml"
    path.write_text("")

    class Picky(Fake):
        def reconfigure(self, config):
            raise ComponentFailure("cannot apply")

    comp = Picky("picky")
    sup, clock = make([comp], config_path=path)
    start_all(sup)
    sup.reload()
    assert sup.slots[0].state == FAILED
    clock.now += 2
    sup.step()
    assert sup.slots[0].state == RUNNING


def test_stop_stops_components_in_reverse_order():
    order = []

    class Ordered(Fake):
        def stop(self, timeout):
            order.append(self.name)

    sup, _ = make([Ordered("first"), Ordered("second")])
    sup.request_stop()
    assert sup.run() == 0
    assert order == ["second", "first"]


@pytest.mark.parametrize("failures,expected", [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)])
def test_default_backoff(failures, expected):
    assert Backoff().delay(failures) == expected


def test_the_loop_waits_longer_while_everything_runs_but_not_past_the_watchdog():
    steady, flaky = Fake("steady", essential=True), Fake("flaky")
    sup, clock = make([steady, flaky], notifier=RecordingNotifier(watchdog_usec=10_000_000))
    start_all(sup)
    sup.step()
    assert sup.ready and sup._next_wait() == sup.idle_tick == 5 * sup.tick
    clock.now += 4.5                                 # the next WATCHDOG=1 is due in 0.5 s
    assert sup._next_wait() == pytest.approx(0.5)
    flaky.broken = True
    sup.step()                                       # failed: a restart is timed with tick
    assert sup._next_wait() == sup.tick
